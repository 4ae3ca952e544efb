"""Sessions waiting for a member: the index of queued handoffs (`on_no_free_member: wait`).

Role: a team router queues a handoff it cannot complete in the session's
`router_state["waiting"]` (`runner.runtime.teams.queued`). `WaitingSessions` indexes those
sessions by (team, specialization) and records which keys are due, i.e. may be served because
capacity freed up:

  - the session table keeps it current: `track` after a decision changed a session's
    `router_state`, at restore and adoption; `forget` when a session ends; `freed(agent)` when
    a member's workload drops (the session ended, was handed off away or went to a person);
  - the session changes (`runner.runtime.sessions.changes`) mark keys due on request (a member
    available again, a reload, open) and serve what is due (`take_due`), each waiter through the
    same path as any decision made outside a turn, in the order `waiters` gives.

Invariants:
  - Off the hot path when nothing waits: `freed` returns after one dict check.
  - Listing a key's waiters costs O(waiters of that key) (plus sorting them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from runner.spec.models import Team
from runner.spec.vocabulary import priority_rank
from runner.state.sessions import SessionRow

__all__ = ["HasRow", "WaitKey", "WaitingSessions", "queued_since", "waiting_target"]

WaitKey = tuple[str, str]  # (team, specialization)


class HasRow(Protocol):
    """What the index holds per session (the session table's live entry)."""

    @property
    def row(self) -> SessionRow: ...


def waiting_target(row: SessionRow) -> str | None:
    """The specialization a team session's queued handoff waits for (None: nothing waits)."""
    if row.kind != "team":
        return None
    waiting = row.router_state.get("waiting")
    if not isinstance(waiting, Mapping):
        return None
    target = waiting.get("target")
    return target if isinstance(target, str) and target else None


def queued_since(row: SessionRow) -> float:
    """When the session's handoff was queued (its creation for state written before `since`)."""
    waiting = row.router_state.get("waiting")
    since: Any = waiting.get("since") if isinstance(waiting, Mapping) else None
    if isinstance(since, (int, float)) and not isinstance(since, bool) and math.isfinite(since):
        return float(since)
    return row.created_at


def _order(live: HasRow) -> tuple[float, int, float]:
    row = live.row
    return (
        queued_since(row),
        priority_rank(row.priority),
        row.created_at,
    )  # full ties: the order they were indexed


class WaitingSessions:
    """The waiting sessions of one runtime, and which of their keys are due (module doc)."""

    __slots__ = ("by_key", "key_of", "member_keys", "pending")

    def __init__(self) -> None:
        self.by_key: dict[WaitKey, dict[str, HasRow]] = {}
        self.key_of: dict[str, WaitKey] = {}
        self.member_keys: dict[str, tuple[WaitKey, ...]] = {}  # agent -> its (team, spec)s
        self.pending: dict[WaitKey, None] = {}  # keys due, in the order they freed up

    # ------------------------------------------------------------ the index

    def configure(self, teams: Mapping[str, Team]) -> None:
        """Which (team, specialization)s a member's freed slot may serve (on every load)."""
        keys: dict[str, list[WaitKey]] = {}
        for name, team in teams.items():
            for member in team.members:
                keys.setdefault(member.agent, []).append((name, member.specialization))
        self.member_keys = {agent: tuple(dict.fromkeys(k)) for agent, k in keys.items()}

    def track(self, live: HasRow) -> None:
        """Index (or unindex) a session after its `router_state` may have changed."""
        row = live.row
        target = waiting_target(row) if row.state != "ended" else None
        key = (row.target, target) if target is not None else None
        old = self.key_of.get(row.id)
        if old == key:
            if key is not None:
                self.by_key[key][row.id] = live
            return
        if old is not None:
            self.forget(row.id)
        if key is not None:
            self.key_of[row.id] = key
            self.by_key.setdefault(key, {})[row.id] = live

    def forget(self, session_id: str) -> None:
        key = self.key_of.pop(session_id, None)
        if key is None:
            return
        waiters = self.by_key.get(key)
        if waiters is not None:
            waiters.pop(session_id, None)
            if not waiters:
                del self.by_key[key]
                self.pending.pop(key, None)

    def waiters(self, key: WaitKey) -> list[HasRow]:
        """The sessions waiting for `key`, in serving order: oldest queued first, then by
        priority (urgent > high > medium > low), then the oldest session, then the one indexed
        first (a stable sort)."""
        waiters = self.by_key.get(key)
        return sorted(waiters.values(), key=_order) if waiters else []

    def keys(self, team: str | None = None, specialization: str | None = None) -> list[WaitKey]:
        return [
            k
            for k in self.by_key
            if (team is None or k[0] == team) and (specialization is None or k[1] == specialization)
        ]

    # ------------------------------------------------------------ what is due

    def freed(self, agent: str) -> None:
        """`agent`'s workload dropped: what waits for one of its specializations is due."""
        if not self.by_key:
            return
        for key in self.member_keys.get(agent, ()):
            if key in self.by_key:
                self.pending[key] = None

    def due(self, keys: Iterable[WaitKey]) -> None:
        """Mark `keys` due (those with waiters)."""
        for key in keys:
            if key in self.by_key:
                self.pending[key] = None

    def take_due(self) -> WaitKey | None:
        """The key that became due first (removed from what is due); None when none is."""
        if not self.pending:
            return None
        key = next(iter(self.pending))
        del self.pending[key]
        return key
