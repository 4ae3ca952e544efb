"""The turn log's writer: a row per turn (answered or failed), buffered and written behind.

Role: `Turns` hands every turn here (`record`); the composition root's write-behind pass
(`RuntimeParts.flush`, every `AGENT_LIFECYCLE_PERSIST_INTERVAL_MS` and on close) writes the
buffer to the state's turn log (`runner.state.turn_log`), which `runner report` reads.

Invariants: the buffer is bounded (`BUFFER_LIMIT` rows: beyond it the pass is run at once); a
failing write is logged and its rows dropped: figures never break a turn, and never grow
without bound.
"""

from __future__ import annotations

import logging

from runner.state.turn_log import TurnFigures, TurnLog

__all__ = ["BUFFER_LIMIT", "TurnRecorder"]

BUFFER_LIMIT = 10_000

log = logging.getLogger("runner.runtime")


class TurnRecorder:
    """Buffered rows of the turn log of one environment (see the module docstring)."""

    def __init__(self, env: str, turn_log: TurnLog | None) -> None:
        self._env = env
        self._log = turn_log
        self._rows: list[TurnFigures] = []

    def record(
        self,
        session_id: str,
        *,
        at: float,
        agent: str | None,
        team: str | None,
        ms: float,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost: float | None = None,
        error: bool = False,
    ) -> None:
        if self._log is None:
            return
        self._rows.append(
            TurnFigures(
                self._env, session_id, at, agent, team, ms, input_tokens, output_tokens, cost, error
            )
        )
        if len(self._rows) >= BUFFER_LIMIT:
            self.flush()

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows or self._log is None:
            return
        try:
            self._log.append(rows)
        except Exception:
            log.exception("the turn log could not be written: %d turn(s) dropped", len(rows))
