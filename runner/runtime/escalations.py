"""Escalations as operators see them: recorded, notified and decided.

Role: part of the teams' operator side (`runner.runtime.operators` attaches it). The team
router opens and moves escalations (`runner.runtime.escalation` is the pure state machine of
one); `EscalationDesk` records every `escalation:*` event in the escalations table
(`rt_esc_escalations`, written behind), tells an opened level's `notify` channels through the
runtime's notifier, and carries out operators' decisions (`approve`, `accept`, `reject`) as
routing decisions applied through `Lifecycle.apply_decision`. It also holds the small helpers
the operator side shares: finding an open session row, acting as an operator, the team router.

Invariants:
  - Every change to a session goes through `Lifecycle.apply_decision` (same order of events,
    same persistence as a routed turn); nothing here writes `rt_sessions`.
  - Escalation history is written at most `persist_interval` late, and on close; pending
    escalations are also in the session rows, so nothing pending is lost on a crash.
  - A failing channel never breaks a session (notifications are delivered in the background).
  - Operator decisions name who decided (`by`), recorded in the escalation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from runner.runtime.errors import (
    LifecycleError,
    SessionNotFoundError,
    SessionStateError,
    UnknownTeamError,
)
from runner.runtime.escalation import (
    Escalation,
    EscalationStateError,
    accept_suggestion,
    approve,
    escalation_event_data,
    reject,
)
from runner.runtime.events import Event
from runner.runtime.monitoring import Notification
from runner.runtime.session import AuthContext
from runner.runtime.teams import RouteDecision, TeamRouter
from runner.state.operators import OperatorStore, StoredEscalation
from runner.state.sessions import SessionRow

if TYPE_CHECKING:
    from runner.runtime.lifecycle import Lifecycle

__all__ = [
    "PENDING",
    "EscalationDesk",
    "EscalationNotPendingError",
    "apply_as",
    "open_row",
    "team_router",
    "well_formed",
]

log = logging.getLogger("runner.runtime.operators")

PENDING = ("pending_approval", "suggested")


class EscalationNotPendingError(LifecycleError):
    """The session has no escalation in a state that allows the operator's decision."""


# ---------------------------------------------------------------- shared by the operator side


def well_formed(escalation: Any) -> bool:
    """An escalation as the team router writes it (other routers may store anything)."""
    if not isinstance(escalation, Mapping):
        return False
    try:
        Escalation.from_dict(escalation)
    except (EscalationStateError, KeyError, TypeError, ValueError):
        return False
    return True


def open_row(lc: Lifecycle, session_id: str, *, team_only: bool) -> SessionRow:
    """The row of an open session of `lc`'s environment (of a team session if `team_only`)."""
    row = lc.session_row(session_id)
    if row is None or row.env != lc.env.name:
        raise SessionNotFoundError(session_id)
    if row.state == "ended":
        raise SessionStateError(session_id, "ended", f"it ended ({row.reason})")
    if team_only and row.kind != "team":
        raise LifecycleError(f"session {session_id!r} is with an agent, not a team")
    return row


async def apply_as(lc: Lifecycle, row: SessionRow, decision: RouteDecision, *, who: str) -> None:
    """Apply `decision` to the session as operator `who` (of the session's workspace)."""
    auth = AuthContext.operator(who, workspace_id=row.workspace_id)
    await lc.apply_decision(row.id, decision, auth=auth)


def team_router(lc: Lifecycle, team: str) -> TeamRouter:
    """The team's router; operators need the team router (not a custom one)."""
    router = lc.routers.get(team)
    if router is None:
        raise UnknownTeamError(f"team.{team} is neither applied nor declared")
    if not isinstance(router, TeamRouter):
        raise LifecycleError(
            f"team.{team} is routed by {type(router).__name__}, not the team router; "
            "operators need runner.runtime.teams.build_team_router"
        )
    return router


# ---------------------------------------------------------------- the desk


class EscalationDesk:
    """Records, notifies and decides escalations (see the module docstring)."""

    def __init__(self, lc: Lifecycle, store: OperatorStore) -> None:
        self.lc = lc
        self.env = lc.env.name
        self.store = store
        self._flush_handle: asyncio.TimerHandle | None = None
        self._escalated: set[str] = {
            e.session_id for e in store.escalations(self.env, open_sessions_only=True)
        }

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    # ------------------------------------------------------------ recording

    def backfill(self, row: SessionRow) -> None:
        """Record the escalation of a session found open at attach time."""
        if well_formed(row.escalation) and row.kind == "team":
            assert row.escalation is not None
            self._escalated.add(row.id)
            self.store.record_escalation(
                self.env, row.escalation, team=row.target, at=row.last_activity_at
            )

    def on_escalation(self, event: Event) -> None:
        data = event.data
        esc = data.get("escalation")
        if not well_formed(esc):
            return  # another router's escalation events: nothing to record
        assert isinstance(esc, Mapping)
        session_id = str(data.get("session_id") or esc.get("session_id"))
        self._escalated.add(session_id)
        self.store.record_escalation(self.env, esc, team=data.get("team"), at=event.at)
        self._schedule_flush()
        notify = list(data.get("notify") or ())
        if event.type == "escalation:opened" and notify:
            summary = (
                f"[escalation] team.{data.get('team')}: session {session_id} escalated to "
                f"level {esc['level']} ({esc['target']}), {esc['status']} (env {self.env})"
            )
            body = {
                "event": event.type,
                "env": self.env,
                "team": data.get("team"),
                "session_id": session_id,
                "escalation_id": esc["id"],
                "level": esc["level"],
                "target": esc["target"],
                "status": esc["status"],
            }
            self.lc.notifier.notify(notify, Notification(summary=summary, body=body))

    def session_ended(self, session_id: str) -> None:
        if session_id in self._escalated:
            self._escalated.discard(session_id)
            self.store.session_closed(session_id)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Escalation history is written behind, at most `persist_interval` late."""
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.store.flush()
            return
        self._flush_handle = loop.call_later(self.lc.config.persist_interval_s, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        try:
            self.store.flush()
        except Exception:
            log.exception("escalation history could not be written; retrying later")
            self._schedule_flush()

    # ------------------------------------------------------------ decisions

    def _escalation(self, row: SessionRow, action: str) -> Escalation:
        if row.escalation is None:
            raise EscalationNotPendingError(f"session {row.id!r} has no escalation to {action}")
        if not well_formed(row.escalation):
            raise EscalationNotPendingError(
                f"session {row.id!r} has an escalation this runtime cannot read: "
                f"{dict(row.escalation)!r}"
            )
        return Escalation.from_dict(row.escalation)

    async def reject(self, session_id: str, *, by: str, reason: str | None) -> Escalation:
        """pending_approval or suggested -> rejected; the session carries on as it was."""
        row = open_row(self.lc, session_id, team_only=True)
        esc = self._escalation(row, "reject")
        try:
            done, names = reject(esc, by=by, now=self.lc.clock.now(), reason=reason)
        except EscalationStateError as exc:
            raise EscalationNotPendingError(str(exc)) from None
        events = tuple(
            (n, escalation_event_data(done, team=row.target, by=by, reason=reason)) for n in names
        )
        decision = RouteDecision(agent=row.current_agent, escalation=done.as_dict(), events=events)
        await apply_as(self.lc, row, decision, who=by)
        return done

    async def decide(
        self, session_id: str, *, by: str, action: Literal["approve", "accept"]
    ) -> Escalation:
        """pending_approval (approve) or suggested (accept) -> approved; the effect follows."""
        lc = self.lc
        row = open_row(lc, session_id, team_only=True)
        esc = self._escalation(row, action)
        transition = approve if action == "approve" else accept_suggestion
        try:
            done, names = transition(esc, by=by, now=lc.clock.now())
        except EscalationStateError as exc:
            raise EscalationNotPendingError(str(exc)) from None
        router = team_router(lc, row.target)
        events = tuple((n, escalation_event_data(done, team=row.target, by=by)) for n in names)
        decision = router.effect_decision(
            done,
            current_agent=row.current_agent,
            router_state=row.router_state,
            workload=lc.workload,
            events=events,
        )
        await apply_as(lc, row, decision, who=by)
        return done

    def pending(self, *, workspace: str | None) -> list[StoredEscalation]:
        """Escalations waiting for an operator (pending approval or suggested) of open sessions."""
        out: list[StoredEscalation] = []
        for row in sorted(self.lc.open_rows(), key=lambda r: (r.created_at, r.id)):
            esc = row.escalation
            if esc is None or esc.get("status") not in PENDING:
                continue
            if workspace is not None and row.workspace_id != workspace:
                continue
            team = row.target if row.kind == "team" else None
            out.append(StoredEscalation(self.env, team, True, dict(esc)))
        return out

    def history(self, session_id: str) -> list[StoredEscalation]:
        return self.store.escalations(self.env, session_id=session_id)
