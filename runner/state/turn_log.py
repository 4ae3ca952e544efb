"""The turn log: one row per turn a runtime ran (when, who answered, how long, tokens, cost,
failed or not), for `runner report`; and the Protocol both backends implement.

Role: the runtime's turn path buffers a `TurnFigures` per turn and writes them behind, in the
same pass that writes turn counters (`runner.runtime.sessions.turn_recorder`); `runner report`
reads a period of them back with the sessions that started or ended in it. The table is
`rt_turns` (migration 4 of `runner.state.schema_sql`); `SqlTurnLog` is the Protocol written once
over SQL, and `turn_log_sqlite` / `pg_turn_log` give it its database.

Invariants: rows are append-only and plain data; `prune` drops rows older than a cut-off
(retention), nothing else deletes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from runner.state.sql_dialect import EnvKeys, SqlDialect, SqlRunner

__all__ = [
    "SESSION_SPAN_SQL",
    "TURN_COLUMNS",
    "SessionSpan",
    "SqlTurnLog",
    "TurnFigures",
    "TurnLog",
    "turn_from",
    "turn_values",
]


@dataclass(frozen=True, slots=True)
class TurnFigures:
    env: str
    session_id: str
    at: float
    agent: str | None
    team: str | None
    ms: float
    input_tokens: int
    output_tokens: int
    cost: float | None
    error: bool


@dataclass(frozen=True, slots=True)
class SessionSpan:
    """What a report needs of a session: who it was with, when it started and ended, why."""

    id: str
    kind: str
    target: str
    created_at: float
    ended_at: float | None
    reason: str | None
    turns: int


TURN_COLUMNS = "env, session_id, at, agent, team, ms, input_tokens, output_tokens, cost, error"
SESSION_SPAN_SQL = (
    "SELECT id, kind, target, created_at, ended_at, reason, turns FROM rt_sessions "
    "WHERE env = ? AND ((created_at >= ? AND created_at < ?) "
    "OR (ended_at IS NOT NULL AND ended_at >= ? AND ended_at < ?)) ORDER BY created_at"
)


class TurnLog(Protocol):
    def append(self, rows: Sequence[TurnFigures]) -> None:
        """Add turns (one transaction)."""
        ...

    def turns_between(self, env: str, since: float, until: float) -> list[TurnFigures]:
        """The environment's turns with `since <= at < until`, oldest first."""
        ...

    def sessions_between(self, env: str, since: float, until: float) -> list[SessionSpan]:
        """The environment's sessions that started or ended in `[since, until)`."""
        ...

    def prune(self, env: str, before: float) -> int:
        """Drop the environment's turns older than `before`; returns how many."""
        ...


def turn_values(row: TurnFigures, env_key: str) -> tuple[Any, ...]:
    """The values of `TURN_COLUMNS` for a row, its environment stored as `env_key` (the
    backend's key for it)."""
    return (
        env_key,
        row.session_id,
        row.at,
        row.agent,
        row.team,
        row.ms,
        row.input_tokens,
        row.output_tokens,
        row.cost,
        row.error,
    )


def turn_from(values: Sequence[Any], env: str) -> TurnFigures:
    """A row read back (`TURN_COLUMNS`), of environment `env`."""
    session_id, at, agent, team, ms, input_tokens, output_tokens, cost, error = values[1:10]
    return TurnFigures(
        env, session_id, at, agent, team, ms, input_tokens, output_tokens, cost, bool(error)
    )


class SqlTurnLog:
    """The `TurnLog` on any database a `SqlRunner` reaches, in its dialect; environments
    stored under `keys` (a SQLite file as they are, a shared PostgreSQL database per project)."""

    def __init__(self, runner: SqlRunner, *, dialect: SqlDialect, keys: EnvKeys) -> None:
        self._runner, self._keys = runner, keys
        marks = ", ".join("?" for _ in TURN_COLUMNS.split(","))
        self._insert = dialect.sql(f"INSERT INTO rt_turns ({TURN_COLUMNS}) VALUES ({marks})")
        self._turns = dialect.sql(
            f"SELECT {TURN_COLUMNS} FROM rt_turns WHERE env = ? AND at >= ? AND at < ? ORDER BY at"
        )
        self._sessions = dialect.sql(SESSION_SPAN_SQL)
        self._prune = dialect.sql("DELETE FROM rt_turns WHERE env = ? AND at < ?")

    def append(self, rows: Sequence[TurnFigures]) -> None:
        if rows:
            key = self._keys.env_key
            values = [turn_values(r, key(r.env)) for r in rows]
            self._runner.execute_batches([(self._insert, values)])

    def turns_between(self, env: str, since: float, until: float) -> list[TurnFigures]:
        found = self._runner.fetch(self._turns, (self._keys.env_key(env), since, until))
        return [turn_from(r, env) for r in found]

    def sessions_between(self, env: str, since: float, until: float) -> list[SessionSpan]:
        key = self._keys.env_key(env)
        found = self._runner.fetch(self._sessions, (key, since, until, since, until))
        return [SessionSpan(*r) for r in found]

    def prune(self, env: str, before: float) -> int:
        return self._runner.execute(self._prune, (self._keys.env_key(env), before))
