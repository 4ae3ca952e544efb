"""Changing sessions: router decisions applied, sessions ended, queued handoffs served.

Role: everything that changes a session's member or state outside the table's own mechanics
goes through `SessionChanges`: a decision made on a turn (`apply`, by the turn path) or outside
one (`apply_outside`: an operator's, an approved escalation's, a handoff requested from code),
ending sessions (`end`; idle expiry, `expire`; agent cleanup, `end_using`), and serving the
handoffs queued with `on_no_free_member: wait` as soon as capacity frees up.

Applying a decision (in this order): `router_state` and `escalation` are stored; for each
handoff `handoff:initiated` is emitted; `agent` becomes the session's current member (None or
`human`: no agent answers); `state` (if set) is entered (`session:state-changed`; `ended` ends
the session with reason `router`); `events` are emitted verbatim with the session id; after the
answering agent replied (a turn) or at once (outside a turn) `handoff:completed` follows for
each handoff.

Invariants:
  - Queued handoffs are served only when a change is complete: `apply`, `apply_outside` and
    `end` serve what became due once their own change is done, and a pass already running is
    never re-entered (what becomes due meanwhile is served by that pass). Waiters are served
    oldest first, then by priority, one per free slot (`WaitingSessions.waiters`).
  - A decision outside a turn saves the row at once; a turn's counters are written behind.
  - A failing pass for one (team, specialization) is logged and never breaks the change that
    triggered it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from runner.runtime.context import RuntimeContext
from runner.runtime.errors import SessionStateError
from runner.runtime.sessions.leases import SessionLeases
from runner.runtime.sessions.routers import TeamRouters
from runner.runtime.sessions.table import LiveSession, LiveSessions
from runner.runtime.sessions.waiting import WaitKey
from runner.runtime.teams import Handoff, RouteDecision
from runner.spec.vocabulary import HUMAN
from runner.state.sessions import SessionRow, SessionStore

__all__ = ["SessionChanges"]

log = logging.getLogger("runner.runtime")


class SessionChanges:
    """Applies decisions and ends sessions, serving queued handoffs (see the module docstring)."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        table: LiveSessions,
        routers: TeamRouters,
        store: SessionStore,
        leases: SessionLeases | None = None,
    ) -> None:
        self._emit = ctx.emit
        self._leases = leases
        self._table = table
        self._waiting = table.waiting
        self._routers = routers
        self._store = store
        self._serving = False

    # ------------------------------------------------------------ decisions

    def apply(self, live: LiveSession, decision: RouteDecision) -> int:
        """Apply a turn's decision (handoffs complete after the reply); escalations started."""
        escalations = self._apply(live, decision)
        self.settle()  # a member this decision freed may serve a queued handoff
        return escalations

    def apply_outside(self, live: LiveSession, decision: RouteDecision) -> None:
        """Apply a decision made outside a turn: handoffs complete at once, the row is saved."""
        row = live.row
        if row.state == "ended":
            raise SessionStateError(row.id, "ended", "it cannot change any more")
        self._apply(live, decision)
        self.complete_handoffs(row, decision.handoffs)
        self._store.save_state(row)
        self._table.dirty.discard(row.id)
        waiting = self._waiting
        key = waiting.key_of.get(row.id)
        if key is not None and row.state != "awaiting_human":
            waiting.due((key,))  # e.g. handed back by a person: a member may be free
        self.settle()

    def _apply(self, live: LiveSession, decision: RouteDecision) -> int:
        row = live.row
        table = self._table
        emit = self._emit
        escalations = 0
        if decision.router_state is not None:
            row.router_state = dict(decision.router_state)
            self._waiting.track(live)
        if decision.clear_escalation:
            row.escalation = None
        if decision.escalation is not None:
            if row.escalation is None or dict(decision.escalation).get("level") != (
                row.escalation or {}
            ).get("level"):
                escalations = 1
            row.escalation = dict(decision.escalation)
        for h in decision.handoffs:
            emit("handoff:initiated", {"session_id": row.id, **h.as_dict()})
        agent = decision.agent
        if agent == HUMAN:
            agent = None
        table.set_current(live, agent)
        if decision.state == "ended":
            table.end(live, "router")
        elif decision.state is not None and decision.state != row.state:
            table.transition(live, decision.state, reason=None)
        for event_type, data in decision.events:
            emit(event_type, {"session_id": row.id, **data})
        table.dirty.add(row.id)
        return escalations

    def complete_handoffs(self, row: SessionRow, handoffs: tuple[Handoff, ...]) -> None:
        for h in handoffs:
            self._emit("handoff:completed", {"session_id": row.id, **h.as_dict()})

    # ------------------------------------------------------------ ending sessions

    def end(self, live: LiveSession, reason: str) -> None:
        """End a session; its member's freed slot serves who waits for it."""
        self._table.end(live, reason)
        self.settle()

    def expire(self, now: float) -> list[str]:
        """End idle (and too old) sessions at `now`; the ids ended."""
        table = self._table
        leases = self._leases
        ended: list[str] = []
        for live in list(table.live.values()):
            if table.expiry(live.row, now) is None:
                continue
            if leases is None:
                self.end(live, str(table.expiry(live.row, now)))
                ended.append(live.row.id)
                continue
            # Only a session whose lease this instance takes (nobody acts on it, or its holder
            # died and the lease ran out), decided again on the stored row: another instance
            # may have used it since this copy was made.
            if not leases.try_take(live):
                continue
            try:
                reason = table.expiry(live.row, now)
                if reason is not None:
                    self.end(live, reason)
                    ended.append(live.row.id)
            finally:
                leases.done(live)
        return ended

    def end_using(self, agent: str, reason: str) -> int:
        """End every live session pinned to `agent`; how many ended."""
        ended = 0
        leases = self._leases
        for live in self._table.using(agent):
            if leases is None:
                self.end(live, reason)
                ended += 1
                continue
            if not leases.try_take(live):
                continue  # another action (or instance) holds it: it is not ended under it
            try:
                if live.row.state != "ended":  # re-read: another instance may have ended it
                    self.end(live, reason)
                    ended += 1
            finally:
                leases.done(live)
        return ended

    # ------------------------------------------------------------ queued handoffs

    def request(self, keys: Iterable[WaitKey]) -> int:
        """Serve the handoffs queued for `keys` now (or in the pass in progress); how many."""
        self._waiting.due(keys)
        return self.settle()

    def settle(self) -> int:
        """Serve what is due, unless a pass is already running; sessions handed off."""
        waiting = self._waiting
        if not waiting.pending or self._serving:
            return 0
        served = 0
        self._serving = True
        try:
            while (key := waiting.take_due()) is not None:
                try:
                    served += self._serve(key)
                except Exception:
                    log.exception("waiting handoffs for %s/%s could not be served", *key)
        finally:
            self._serving = False
        return served

    def _serve(self, key: WaitKey) -> int:
        """Complete the handoffs queued for `key` (team, specialization), in serving order,
        while the team's router finds a free member; how many sessions were handed off.

        Each is applied like any decision outside a turn (`handoff:initiated`, then
        `handoff:completed` with `queued_for_s`; the row is saved). Ended sessions are
        dropped; sessions a person has (`awaiting_human`) keep waiting until handed back."""
        router = self._routers.queue_server(key[0])
        if router is None:
            return 0
        table, waiting = self._table, self._waiting
        served = 0
        leases = self._leases
        for indexed in waiting.waiters(key):
            live = table.live.get(indexed.row.id)
            if live is None or live.row.state == "ended":
                waiting.forget(indexed.row.id)
                continue
            # Under the session's lease, like any change: one another instance acts on keeps
            # waiting here (this instance's own action in progress already holds it).
            taken = False
            if leases is not None and live.row.id not in leases.acting:
                if not leases.try_take(live):
                    continue
                taken = True
            try:
                row = live.row
                if row.state in ("awaiting_human", "ended") or row.current_agent is None:
                    continue
                decision = router.serve_waiting(
                    current_agent=row.current_agent,
                    router_state=row.router_state,
                    workload=table.workload,
                )
                if decision is None:
                    break  # no free member left for this specialization
                self.apply_outside(live, decision)
                served += len(decision.handoffs)
            finally:
                if taken:
                    leases.done(live)  # type: ignore[union-attr]
        return served
