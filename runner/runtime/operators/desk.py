"""Escalations as operators see them: recorded, notified and decided.

Role: part of the operator side (`runner.runtime.operators`). The team router opens and moves
escalations and stores the current one in the session row (the one place it lives);
`EscalationDesk` derives the rest from it: it records every `escalation:*` event in the
escalation history (`runner.state.operators.EscalationHistory`, written behind), tells an opened
level's `notify` channels through the runtime's notifier, lists what waits for an operator
(read from the open session rows), and carries out operators' decisions (`approve`, `accept`,
`reject`) as routing decisions applied as the operator.

Invariants:
  - Every change to a session goes through `OperatorSessions.apply_as` (same order of events,
    same persistence as a routed turn); nothing here writes a session row.
  - Escalation history is written at most `persist_interval` late, and on close; pending
    escalations are in the session rows, so nothing pending is lost on a crash. A session's
    history is closed when it ends with an escalation in its row.
  - A failing channel never breaks a session (notifications are delivered in the background).
  - Operator decisions name who decided (`by`), recorded in the escalation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Literal

from runner.runtime.clock import Clock
from runner.runtime.errors import LifecycleError
from runner.runtime.escalation import (
    AWAITING_OPERATOR,
    Escalation,
    EscalationStateError,
    accept_suggestion,
    approve,
    escalation_event_data,
    read_escalation,
    reject,
)
from runner.runtime.events import Event
from runner.runtime.monitoring import Notification, Notifier
from runner.runtime.operators.acting import OperatorSessions
from runner.runtime.sessions import TeamRouters
from runner.runtime.teams import RouteDecision
from runner.state.operators import EscalationHistory, StoredEscalation
from runner.state.sessions import SessionRow

__all__ = ["EscalationDesk", "EscalationNotPendingError"]

log = logging.getLogger("runner.runtime.operators")


class EscalationNotPendingError(LifecycleError):
    """The session has no escalation in a state that allows the operator's decision."""


class EscalationDesk:
    """Records, notifies and decides escalations (see the module docstring)."""

    def __init__(
        self,
        *,
        env: str,
        history: EscalationHistory,
        sessions: OperatorSessions,
        routers: TeamRouters,
        notifier: Notifier,
        clock: Clock,
        persist_interval: float,
    ) -> None:
        self._env = env
        self._history = history
        self._sessions = sessions
        self._routers = routers
        self._notifier = notifier
        self._clock = clock
        self._persist_interval = persist_interval
        self._flush_handle: asyncio.TimerHandle | None = None

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    # ------------------------------------------------------------ recording

    def backfill(self, row: SessionRow) -> None:
        """Record the escalation of a session found open at start-up."""
        if row.kind == "team" and read_escalation(row.escalation) is not None:
            assert row.escalation is not None
            self._history.record_escalation(
                self._env, row.escalation, team=row.target, at=row.last_activity_at
            )

    def on_escalation(self, event: Event) -> None:
        data = event.data
        esc = data.get("escalation")
        if read_escalation(esc) is None:
            return  # another router's escalation events: nothing to record
        assert isinstance(esc, Mapping)
        session_id = str(data.get("session_id") or esc.get("session_id"))
        self._history.record_escalation(self._env, esc, team=data.get("team"), at=event.at)
        self._schedule_flush()
        notify = list(data.get("notify") or ())
        if event.type == "escalation:opened" and notify:
            summary = (
                f"[escalation] team.{data.get('team')}: session {session_id} escalated to "
                f"level {esc['level']} ({esc['target']}), {esc['status']} (env {self._env})"
            )
            body = {
                "event": event.type,
                "env": self._env,
                "team": data.get("team"),
                "session_id": session_id,
                "escalation_id": esc["id"],
                "level": esc["level"],
                "target": esc["target"],
                "status": esc["status"],
            }
            self._notifier.notify(notify, Notification(summary=summary, body=body))

    def session_ended(self, row: SessionRow) -> None:
        """A session ended: its escalations stay in the history, no longer open."""
        if read_escalation(row.escalation) is not None:
            self._history.session_closed(row.id)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Escalation history is written behind, at most `persist_interval` late."""
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._history.flush()
            return
        self._flush_handle = loop.call_later(self._persist_interval, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        try:
            self._history.flush()
        except Exception:
            log.exception("escalation history could not be written; retrying later")
            self._schedule_flush()

    # ------------------------------------------------------------ decisions

    def _escalation(self, row: SessionRow, action: str) -> Escalation:
        if row.escalation is None:
            raise EscalationNotPendingError(f"session {row.id!r} has no escalation to {action}")
        esc = read_escalation(row.escalation)
        if esc is None:
            raise EscalationNotPendingError(
                f"session {row.id!r} has an escalation this runtime cannot read: "
                f"{dict(row.escalation)!r}"
            )
        return esc

    async def reject(self, session_id: str, *, by: str, reason: str | None) -> Escalation:
        """pending_approval or suggested -> rejected; the session carries on as it was."""
        row = self._sessions.open_row(session_id, team_only=True)
        esc = self._escalation(row, "reject")
        try:
            done, names = reject(esc, by=by, now=self._clock.now(), reason=reason)
        except EscalationStateError as exc:
            raise EscalationNotPendingError(str(exc)) from None
        events = tuple(
            (n, escalation_event_data(done, team=row.target, by=by, reason=reason)) for n in names
        )
        decision = RouteDecision(agent=row.current_agent, escalation=done.as_dict(), events=events)
        await self._sessions.apply_as(row, decision, who=by)
        return done

    async def decide(
        self, session_id: str, *, by: str, action: Literal["approve", "accept"]
    ) -> Escalation:
        """pending_approval (approve) or suggested (accept) -> approved; the effect follows."""
        row = self._sessions.open_row(session_id, team_only=True)
        esc = self._escalation(row, action)
        transition = approve if action == "approve" else accept_suggestion
        try:
            done, names = transition(esc, by=by, now=self._clock.now())
        except EscalationStateError as exc:
            raise EscalationNotPendingError(str(exc)) from None
        router = self._routers.team_router(row.target)
        events = tuple((n, escalation_event_data(done, team=row.target, by=by)) for n in names)
        decision = router.effect_decision(
            done,
            current_agent=row.current_agent,
            router_state=row.router_state,
            workload=self._sessions.workload,
            events=events,
        )
        await self._sessions.apply_as(row, decision, who=by)
        return done

    def pending(
        self, *, workspace: str | None, covers: Callable[[str | None], bool]
    ) -> list[StoredEscalation]:
        """Escalations waiting for an operator (pending approval or suggested) of open sessions
        in workspaces `covers` admits (in `workspace` only, when given)."""
        out: list[StoredEscalation] = []
        rows = self._sessions.open_rows()
        for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
            esc = row.escalation
            if esc is None or esc.get("status") not in AWAITING_OPERATOR:
                continue
            if not covers(row.workspace_id) or (
                workspace is not None and row.workspace_id != workspace
            ):
                continue
            team = row.target if row.kind == "team" else None
            out.append(StoredEscalation(self._env, team, True, dict(esc)))
        return out

    def history(self, session_id: str) -> list[StoredEscalation]:
        return self._history.escalations(self._env, session_id=session_id)
