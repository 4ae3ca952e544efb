"""The operator API: escalation decisions, the human queue, requested handoffs, teams and
member availability changed from code.

Role: the composition root builds one `Operators` per runtime (`Lifecycle.operators`). It

  - reacts to the runtime's events so that what the team router decides has its effects:
    escalations are recorded and notified (`EscalationDesk`), sessions waiting for a person
    are queued (`HumanQueue`);
  - offers the operator API: `approve_escalation`, `reject_escalation`, `accept_escalation`,
    `pending_escalations`, `escalation_history`, `human_queue`, `transcript`, `claim`,
    `answer`, `hand_back` (delegated to those two parts), `handle_agent_handoff`,
    `create_team`, `set_member_availability`, `member_availability` (here).

It reads and changes sessions only through the session service (`OperatorSessions`), team
routers through `TeamRouters`, and reloads the runtime (a team created from code) through the
`reload` it was given by the composition root.

Invariants:
  - Every change to a session goes through the session service's `apply_decision` (same order
    of events, same persistence as a routed turn); nothing here writes a session row.
  - Everything an operator needs after a restart is durable: a new runtime on the same store
    finds pending escalations (session rows + the escalation history), the human queue with
    its claims, and the availability operators set.
  - Operator decisions name who decided (`by` / `operator`), recorded in the escalation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runner.providers.base import Provider
from runner.runtime.auth import AuthLike
from runner.runtime.context import RuntimeContext
from runner.runtime.errors import LifecycleError, SessionStateError
from runner.runtime.escalation import Escalation
from runner.runtime.events import Event
from runner.runtime.monitoring import Notifier
from runner.runtime.operators.acting import OperatorSessions
from runner.runtime.operators.desk import EscalationDesk
from runner.runtime.operators.human_queue import ConversationItems, HumanQueue
from runner.runtime.operators.team_from_code import project_with_team, team_of
from runner.runtime.sessions import AppliedState, SessionService, TeamRouters
from runner.runtime.teams import MemberAvailability, RouteDecision
from runner.spec.models import Team
from runner.spec.project import Project
from runner.spec.vocabulary import HUMAN, Priority
from runner.state.operators import OperatorStore, QueueItem, StoredEscalation, TranscriptEntry

__all__ = ["HandoffResult", "Operators", "Reload"]

Reload = Callable[[Project], None]  # the runtime's reload (swap teams, pools, ... in place)


@dataclass(frozen=True, slots=True)
class HandoffResult:
    """What `handle_agent_handoff` did.

    status: `completed` (a member of the specialization has the session), `human` (waits for
    a person), `escalated` (no free member; an escalation level opened), `queued` (no free
    member; the handoff completes when one frees up), `unchanged` (already there)."""

    status: Literal["completed", "human", "escalated", "queued", "unchanged"]
    from_agent: str | None
    to: str | None
    escalation: Mapping[str, Any] | None = None


def _conversation_of(provider: Provider) -> ConversationItems | None:
    """Where a person's messages are appended to a conversation, if the provider can."""
    for candidate in (provider, getattr(provider, "store", None)):
        if isinstance(candidate, ConversationItems):
            return candidate
    return None


class Operators:
    """See the module docstring."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        sessions: SessionService,
        routers: TeamRouters,
        applied: AppliedState,
        availability: MemberAvailability,
        store: OperatorStore,
        notifier: Notifier,
        provider: Provider,
        reload: Reload,
    ) -> None:
        self._ctx = ctx
        env = ctx.env.name
        self._sessions = sessions
        self._routers = routers
        self._applied = applied
        self._availability = availability
        self._reload = reload
        self.store = store
        acting = OperatorSessions(env=env, sessions=sessions)
        self._acting = acting
        self.escalations = EscalationDesk(
            env=env,
            history=store,
            sessions=acting,
            routers=routers,
            notifier=notifier,
            clock=ctx.clock,
            persist_interval=ctx.config.persist_interval_s,
        )
        self.queue = HumanQueue(
            env=env,
            store=store,
            sessions=acting,
            applied=applied,
            conversation=_conversation_of(provider),
            clock=ctx.clock,
        )
        events = ctx.events
        self._offs = [
            events.on("escalation:*", self.escalations.on_escalation),
            events.on("handoff:initiated", self.queue.on_handoff),
            events.on("session:state-changed", self._on_state),
            events.on("human:message-received", self.queue.on_user_message),
        ]
        self._closed = False

    def catch_up(self) -> None:
        """Record what happened while no operators followed the runtime (at start-up: the
        escalations of open sessions, sessions waiting for a person not yet queued)."""
        for row in self._sessions.open_rows():
            self.escalations.backfill(row)
            self.queue.backfill(row)

    def close(self) -> None:
        """Stop reacting to events and close the store (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.escalations.close()
        for off in self._offs:
            off()
        self._offs = []
        self.store.close()

    def _on_state(self, event: Event) -> None:
        data = event.data
        sid = str(data.get("session_id"))
        to = data.get("to")
        self.queue.on_state(sid, to=to, was=data.get("from"), at=event.at)
        if to == "ended":
            row = self._sessions.session_row(sid)
            if row is not None:
                self.escalations.session_ended(row)

    # ------------------------------------------------------------ escalation decisions

    async def approve_escalation(self, session_id: str, *, by: str) -> Escalation:
        """pending_approval -> approved; the level's effect follows (a person or a handoff)."""
        return await self.escalations.decide(session_id, by=by, action="approve")

    async def accept_escalation(self, session_id: str, *, by: str) -> Escalation:
        """suggested -> approved; the level's effect follows."""
        return await self.escalations.decide(session_id, by=by, action="accept")

    async def reject_escalation(
        self, session_id: str, *, by: str, reason: str | None = None
    ) -> Escalation:
        """pending_approval or suggested -> rejected; the session carries on as it was."""
        return await self.escalations.reject(session_id, by=by, reason=reason)

    def pending_escalations(self, *, workspace: str | None = None) -> list[StoredEscalation]:
        """Escalations waiting for an operator (pending approval or suggested) of open sessions."""
        return self.escalations.pending(workspace=workspace)

    def escalation_history(self, session_id: str) -> list[StoredEscalation]:
        return self.escalations.history(session_id)

    # ------------------------------------------------------------ the human queue

    def human_queue(self, workspace: str | None = None) -> list[QueueItem]:
        """Sessions waiting for (or held by) a person: most urgent first, then oldest."""
        return self.queue.items(workspace)

    def transcript(self, session_id: str) -> list[TranscriptEntry]:
        """What the user and the operators wrote while a person had the session."""
        return self.queue.transcript(session_id)

    async def claim(self, session_id: str, *, operator: str) -> QueueItem:
        """Take a waiting session; HumanQueueError when another operator holds it."""
        return await self.queue.claim(session_id, operator=operator)

    async def answer(self, session_id: str, *, operator: str, text: str) -> TranscriptEntry:
        """The operator who claimed the session answers the user."""
        return await self.queue.answer(session_id, operator=operator, text=text)

    async def hand_back(self, session_id: str, *, operator: str) -> str:
        """Return the session to the agents (the member before the person, or the primary)."""
        return await self.queue.hand_back(session_id, operator=operator)

    # ------------------------------------------------------------ requested handoffs

    async def handle_agent_handoff(
        self,
        session_id: str,
        *,
        target_specialization: str,
        reason: str,
        urgency: Priority = "medium",
        auth: AuthLike,
    ) -> HandoffResult:
        """Hand a team session to a specialization (or `human`) on request: the same flow as a
        fired trigger (load balancing, `on_no_free_member`, the escalation path)."""
        session = self._sessions.get(session_id, auth=auth)  # checks access and workspace
        row = session.row
        if row.state == "ended":
            raise SessionStateError(session_id, "ended", f"it ended ({row.reason})")
        if row.kind != "team":
            raise LifecycleError(f"session {session_id!r} is with an agent, not a team")
        if row.state == "awaiting_human":
            raise SessionStateError(
                session_id, "awaiting_human", "a person has it; the operator hands it back"
            )
        router = self._routers.team_router(row.target)
        try:
            decision = router.request_handoff(
                session_id=session_id,
                current_agent=row.current_agent,
                router_state=row.router_state,
                escalation=row.escalation,
                target=target_specialization,
                reason=reason,
                turn=row.turns,
                workload=self._sessions.workload,
            )
        except ValueError as exc:
            raise LifecycleError(str(exc)) from None
        requested = (
            "handoff:requested",
            {
                "from": row.current_agent,
                "target": target_specialization,
                "reason": reason,
                "urgency": urgency,
            },
        )
        before = row.current_agent
        opened = decision.escalation is not None and decision.escalation != row.escalation
        decision = RouteDecision(
            agent=decision.agent,
            handoffs=decision.handoffs,
            state=decision.state,
            escalation=decision.escalation,
            router_state=decision.router_state,
            events=(requested, *decision.events),
        )
        await self._sessions.apply_decision(session_id, decision, auth=auth)
        if decision.state == "awaiting_human" and not opened:
            return HandoffResult("human", before, HUMAN)
        if opened:
            to = HUMAN if decision.state == "awaiting_human" else decision.agent
            return HandoffResult("escalated", before, to, decision.escalation)
        if decision.handoffs:
            return HandoffResult("completed", before, decision.agent)
        if decision.router_state is not None and decision.router_state.get("waiting"):
            return HandoffResult("queued", before, None)
        return HandoffResult("unchanged", before, before)

    # ------------------------------------------------------------ teams from code

    def set_member_availability(self, team: str, agent: str, status: str) -> None:
        """Live availability of a member (overrides the spec's): `available`, `busy`, `offline`.
        Durable. Back to `available`, the member serves handoffs queued for its
        specialization at once (oldest first, as far as its `max_workload` allows)."""
        router = self._routers.team_router(team)
        now = self._ctx.clock.now()
        self._availability.set(router.team, agent, status, at=now)
        self._ctx.events.emit(
            "team:availability-changed",
            {"team": team, "agent": agent, "status": status},
            at=now,
        )
        if status == "available":
            for member in router.team.members:
                if member.agent == agent:
                    self._sessions.serve_waiting_handoffs(team, member.specialization)

    def member_availability(self, team: str) -> dict[str, str]:
        return self._availability.effective(self._routers.team_router(team).team)

    async def create_team(self, spec: Team | Mapping[str, Any]) -> Team:
        """Create (or replace) a team from code, validated like a spec file: the Team model,
        members that are declared agents, targets that are specializations or `human`."""
        team = team_of(spec)
        applied = self._applied
        self._reload(project_with_team(team, specs=applied.project, declared=applied.declared))
        self._ctx.events.emit("team:created", {"team": team.name})
        return team
