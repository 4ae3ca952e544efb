"""Queued handoffs (`on_no_free_member: wait`): who waits for what, and serving them on time.

Role: a team router queues a handoff it cannot complete in `router_state["waiting"]`
(`runner.runtime.teams`). `WaitingHandoffs` is the runtime's index of those sessions, by
(team, specialization), and the trigger that serves them as soon as capacity frees up:

  - `LiveSessions` keeps it current: `track` after a decision changed a session's
    `router_state` (`Turns.apply`), at restore and adoption; `forget` when a session ends;
    `freed(agent)` when a member's workload drops (`set_current`: the session ended, was handed
    off away or went to a person);
  - `Lifecycle` asks for a pass (`request`) when a member becomes `available` again, after a
    reload (a raised `max_workload`) and once at open (waiting handoffs survive a restart);
  - a pass calls `serve(key)` (`Turns.serve_waiting`) for each (team, specialization) whose
    capacity may have grown: waiters oldest first (`order`), one per free slot, each completed
    through the same path as any decision made outside a turn.

Invariants:
  - Off the hot path when nothing waits: `freed` returns after one dict check, and nothing is
    served while nobody waits.
  - A pass never runs in the middle of another change: `depth` counts changes in progress
    (`Turns.apply`); the pass runs when the outermost one is done, and a pass started inside a
    pass only adds to the work of the one running (no re-entry).
  - Serving a key costs O(waiters of that key) (plus sorting them).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from runner.spec.models import Team
from runner.state.sessions import SessionRow

if TYPE_CHECKING:
    from runner.runtime.live import LiveSession

__all__ = ["PRIORITY_RANK", "WaitKey", "WaitingHandoffs", "queued_since", "waiting_target"]

log = logging.getLogger("runner.runtime")

WaitKey = tuple[str, str]  # (team, specialization)
PRIORITY_RANK = {"urgent": 0, "high": 1, "medium": 2, "low": 3}
_NO_PRIORITY = 2  # a session without a priority ranks as `medium`


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


def _order(live: LiveSession) -> tuple[float, int, float]:
    row = live.row
    rank = PRIORITY_RANK.get(row.priority or "", _NO_PRIORITY)
    return (queued_since(row), rank, row.created_at)  # full ties: the order they were indexed


class WaitingHandoffs:
    """The waiting sessions of one runtime and the passes that serve them (module docstring)."""

    __slots__ = ("by_key", "depth", "key_of", "member_keys", "pending", "serve", "serving")

    def __init__(self) -> None:
        self.by_key: dict[WaitKey, dict[str, LiveSession]] = {}
        self.key_of: dict[str, WaitKey] = {}
        self.member_keys: dict[str, tuple[WaitKey, ...]] = {}  # agent -> its (team, spec)s
        self.pending: dict[WaitKey, None] = {}  # keys to serve, in the order they freed up
        self.depth = 0  # changes in progress (a pass waits for the outermost to finish)
        self.serving = False
        self.serve: Callable[[WaitKey], int] | None = None  # set by Turns

    # ------------------------------------------------------------ the index

    def configure(self, teams: Mapping[str, Team]) -> None:
        """Which (team, specialization)s a member's freed slot may serve (on every load)."""
        keys: dict[str, list[WaitKey]] = {}
        for name, team in teams.items():
            for member in team.members:
                keys.setdefault(member.agent, []).append((name, member.specialization))
        self.member_keys = {agent: tuple(dict.fromkeys(k)) for agent, k in keys.items()}

    def track(self, live: LiveSession) -> None:
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

    def waiters(self, key: WaitKey) -> list[LiveSession]:
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

    # ------------------------------------------------------------ passes

    def freed(self, agent: str) -> None:
        """`agent`'s workload dropped: what waits for one of its specializations is due."""
        if not self.by_key:
            return
        for key in self.member_keys.get(agent, ()):
            if key in self.by_key:
                self.pending[key] = None

    def settle(self) -> int:
        """Run a pass if one is due and no change is in progress; sessions handed off."""
        if not self.pending or self.depth or self.serving:
            return 0
        return self._run()

    def request(self, keys: Iterable[WaitKey]) -> int:
        """Serve `keys` now (or as part of the pass in progress); sessions handed off."""
        for key in keys:
            if key in self.by_key:
                self.pending[key] = None
        return self.settle()

    def _run(self) -> int:
        serve = self.serve
        if serve is None:
            self.pending.clear()
            return 0
        served = 0
        self.serving = True
        try:
            while self.pending:
                key = next(iter(self.pending))
                del self.pending[key]
                try:
                    served += serve(key)
                except Exception:
                    log.exception("waiting handoffs for %s/%s could not be served", *key)
        finally:
            self.serving = False
        return served
