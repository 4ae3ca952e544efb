"""A session row as stored, for every backend: columns, values in, row out, configuration keys.

Role: `sessions_sqlite` and `pg_sessions` keep the same columns with the same text (JSON as
compact text, times as float seconds); this module turns a `SessionRow` into the values of those
columns and back, and names the SQL both share (with `?` placeholders, put in each backend's
dialect by `sessions_sql`). Pure: no database here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from runner.state.sessions import SessionRow

__all__ = [
    "COLUMNS",
    "EXPIRED",
    "FREE_FOR",
    "INSERT_COLUMNS",
    "RELEASE",
    "SELECT",
    "UPDATE_STATE",
    "config_digest",
    "release_values",
    "row_from",
    "row_values",
    "state_values",
]

COLUMNS = (
    "id, env, kind, target, user_id, workspace_id, state, reason, conversation_id, "
    "current_agent, pins, pools, max_turns, idle_timeout, preferences, priority, turns, "
    "input_tokens, output_tokens, created_at, last_activity_at, ended_at, escalation, "
    "router_state, features, config_hash, written_by"
)
INSERT_COLUMNS = COLUMNS + ", lease_owner, lease_until"
"""What a new row is written with: its columns, and the lease its creator may hold on it."""
SELECT = (
    "SELECT "
    + ", ".join(f"s.{c.strip()}" for c in COLUMNS.split(","))
    + ", c.config FROM rt_sessions s LEFT JOIN rt_session_config c ON c.hash = s.config_hash"
)

EXPIRED = (
    " WHERE s.env = ? AND s.state != 'ended' AND ((s.idle_timeout > 0 AND "
    "s.last_activity_at + s.idle_timeout <= ?) OR s.created_at <= ?) ORDER BY s.created_at"
)
"""Open sessions of an environment (1st ?) idle at a time (2nd ?) or created before a time
(3rd ?), appended to `SELECT`."""

FREE_FOR = "(lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)"
"""The condition under which owner (1st ?) may touch a session at wall time (2nd ?): nobody
holds it, it holds it, or the holder's lease ran out."""

UPDATE_STATE = (
    "UPDATE rt_sessions SET state=?, reason=?, ended_at=?, turns=?, input_tokens=?, "
    "output_tokens=?, last_activity_at=?, current_agent=?, router_state=?, escalation=?, "
    "written_by=? WHERE id=? AND (lease_owner = ? OR ((written_by IS NULL OR written_by = ?) "
    "AND (lease_owner IS NULL OR lease_until < ?)))"
)
"""A state write: by the lease's holder; else only when nobody holds the session and this
instance wrote it last (another instance's write since would make this copy stale: it is
re-read when its lease is taken). Never over a session another instance holds."""

RELEASE = (
    "UPDATE rt_sessions SET state=?, reason=?, ended_at=?, turns=?, input_tokens=?, "
    "output_tokens=?, last_activity_at=?, current_agent=?, router_state=?, escalation=?, "
    "written_by=?, lease_owner=NULL, lease_until=0 WHERE id=? AND lease_owner=?"
)
"""Write the row and give its lease up, only while this owner holds it."""


def config_digest(config: Mapping[str, Any]) -> tuple[str, str]:
    """(sha256, JSON) of a session configuration."""
    text = json.dumps(config, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), text


def row_values(
    row: SessionRow, config_hash: str | None, owner: str, lease_until: float | None = None
) -> tuple[Any, ...]:
    """The values of `INSERT_COLUMNS` (held by `owner` until `lease_until` when given)."""
    return (
        row.id,
        row.env,
        row.kind,
        row.target,
        row.user_id,
        row.workspace_id,
        row.state,
        row.reason,
        row.conversation_id,
        row.current_agent,
        json.dumps({k: list(v) for k, v in row.pins.items()}, separators=(",", ":")),
        json.dumps(row.pools, separators=(",", ":")),
        row.max_turns,
        row.idle_timeout,
        json.dumps(row.preferences, separators=(",", ":")),
        row.priority,
        row.turns,
        row.input_tokens,
        row.output_tokens,
        row.created_at,
        row.last_activity_at,
        row.ended_at,
        None if row.escalation is None else json.dumps(row.escalation),
        json.dumps(row.router_state, separators=(",", ":")),
        json.dumps(row.features, separators=(",", ":")),
        config_hash,
        owner,
        owner if lease_until is not None else None,
        lease_until or 0.0,
    )


def row_from(v: Sequence[Any]) -> SessionRow:
    pins: Mapping[str, list[str]] = json.loads(v[10])
    return SessionRow(
        id=v[0],
        env=v[1],
        kind=v[2],
        target=v[3],
        user_id=v[4],
        workspace_id=v[5],
        state=v[6],
        reason=v[7],
        conversation_id=v[8],
        current_agent=v[9],
        pins={k: (p[0], p[1]) for k, p in pins.items()},
        pools=json.loads(v[11]),
        max_turns=v[12],
        idle_timeout=v[13],
        preferences=json.loads(v[14]),
        priority=v[15],
        turns=v[16],
        input_tokens=v[17],
        output_tokens=v[18],
        created_at=v[19],
        last_activity_at=v[20],
        ended_at=v[21],
        escalation=None if v[22] is None else json.loads(v[22]),
        router_state=json.loads(v[23]),
        features=json.loads(v[24]),
        config={} if v[27] is None else json.loads(v[27]),
    )


def state_values(r: SessionRow, owner: str, now: float) -> tuple[Any, ...]:
    """The parameters of `UPDATE_STATE` for `r`, written by `owner` at wall time `now`."""
    return (
        r.state,
        r.reason,
        r.ended_at,
        r.turns,
        r.input_tokens,
        r.output_tokens,
        r.last_activity_at,
        r.current_agent,
        json.dumps(r.router_state, separators=(",", ":")) if r.router_state else "{}",
        None if r.escalation is None else json.dumps(r.escalation),
        owner,
        r.id,
        owner,
        owner,
        now,
    )


def release_values(r: SessionRow, owner: str) -> tuple[Any, ...]:
    """The parameters of `RELEASE` for `r`, held by `owner`."""
    return (*state_values(r, owner, 0.0)[:12], owner)
