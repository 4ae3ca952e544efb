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
  - Every operator call is authorised: `operator` permission (`admin` for `create_team`) and
    a workspace the caller covers; another workspace's session looks exactly like a missing
    one. The operator is the caller's `user_id`, recorded in the escalation and transcript.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runner.providers.base import Provider
from runner.runtime.auth import ADMIN, CHAT_ACCESS, OPERATOR, AuthContext, AuthLike, require
from runner.runtime.context import RuntimeContext
from runner.runtime.errors import (
    LifecycleError,
    PermissionDeniedError,
    SessionStateError,
    UnknownTeamError,
)
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
from runner.state.sessions import SessionRow

__all__ = ["MAX_ANSWER_CHARS", "HandoffResult", "Operators", "Reload"]

MAX_ANSWER_CHARS = 32_000  # an operator's answer, like a user's message, is bounded

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

    # ------------------------------------------------------------ who may act

    def _operator_on(self, session_id: str, auth: AuthLike) -> tuple[AuthContext, SessionRow]:
        """The operator (checked: `operator` permission) and the session, if in a workspace the
        operator covers; SessionNotFoundError otherwise, as for a missing session."""
        ctx = require(auth, OPERATOR)
        return ctx, self._acting.visible_row(session_id, ctx)

    # ------------------------------------------------------------ escalation decisions

    async def approve_escalation(self, session_id: str, *, auth: AuthLike) -> Escalation:
        """pending_approval -> approved; the level's effect follows (a person or a handoff)."""
        ctx, _ = self._operator_on(session_id, auth)
        return await self.escalations.decide(session_id, by=ctx.user_id, action="approve")

    async def accept_escalation(self, session_id: str, *, auth: AuthLike) -> Escalation:
        """suggested -> approved; the level's effect follows."""
        ctx, _ = self._operator_on(session_id, auth)
        return await self.escalations.decide(session_id, by=ctx.user_id, action="accept")

    async def reject_escalation(
        self, session_id: str, *, auth: AuthLike, reason: str | None = None
    ) -> Escalation:
        """pending_approval or suggested -> rejected; the session carries on as it was."""
        ctx, _ = self._operator_on(session_id, auth)
        return await self.escalations.reject(session_id, by=ctx.user_id, reason=reason)

    def pending_escalations(
        self, *, auth: AuthLike, workspace: str | None = None
    ) -> list[StoredEscalation]:
        """Escalations waiting for an operator (pending approval or suggested) of open sessions
        in the caller's workspaces (in `workspace` only, when given)."""
        ctx = require(auth, OPERATOR)
        return self.escalations.pending(workspace=workspace, covers=ctx.covers)

    def escalation_history(self, session_id: str, *, auth: AuthLike) -> list[StoredEscalation]:
        self._operator_on(session_id, auth)
        return self.escalations.history(session_id)

    # ------------------------------------------------------------ the human queue

    def human_queue(self, workspace: str | None = None, *, auth: AuthLike) -> list[QueueItem]:
        """Sessions waiting for (or held by) a person in the caller's workspaces (in `workspace`
        only, when given): most urgent first, then oldest."""
        ctx = require(auth, OPERATOR)
        return [i for i in self.queue.items(workspace) if ctx.covers(i.workspace_id)]

    def transcript(self, session_id: str, *, auth: AuthLike) -> list[TranscriptEntry]:
        """What the user and the operators wrote while a person had the session: for operators,
        and for users with chat access to the session."""
        ctx = AuthContext.of(auth)
        if OPERATOR not in ctx.permissions and CHAT_ACCESS not in ctx.permissions:
            raise PermissionDeniedError(
                f"user {ctx.user_id!r} needs {OPERATOR!r} or {CHAT_ACCESS!r} to read a transcript"
            )
        self._acting.visible_row(session_id, ctx)
        return self.queue.transcript(session_id)

    async def claim(self, session_id: str, *, auth: AuthLike) -> QueueItem:
        """Take a waiting session; HumanQueueError when another operator holds it."""
        ctx, _ = self._operator_on(session_id, auth)
        return await self.queue.claim(session_id, operator=ctx.user_id)

    async def answer(self, session_id: str, *, auth: AuthLike, text: str) -> TranscriptEntry:
        """The operator who claimed the session answers the user."""
        ctx, _ = self._operator_on(session_id, auth)
        if not text.strip() or len(text) > MAX_ANSWER_CHARS:
            raise LifecycleError(
                f"an answer is 1 to {MAX_ANSWER_CHARS:,} characters (got {len(text):,})"
            )
        return await self.queue.answer(session_id, operator=ctx.user_id, text=text)

    async def hand_back(self, session_id: str, *, auth: AuthLike) -> str:
        """Return the session to the agents (the member before the person, or the primary)."""
        ctx, _ = self._operator_on(session_id, auth)
        return await self.queue.hand_back(session_id, operator=ctx.user_id)

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
        """Hand a team session to a specialization (or `human`) on request, as an operator of the
        session's workspace: the same flow as a fired trigger (load balancing,
        `on_no_free_member`, the escalation path)."""
        ctx, row = self._operator_on(session_id, auth)
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
        await self._acting.apply_as(row, decision, who=ctx.user_id)
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

    def _team_for(self, team: str, ctx: AuthContext) -> Team:
        """The team, if in a workspace `ctx` covers (a team that declares none is the whole
        environment's); UnknownTeamError otherwise, as for a missing team."""
        spec = self._routers.team_router(team).team
        if spec.workspace is not None and not ctx.covers(spec.workspace):
            raise UnknownTeamError(f"team.{team} is neither applied nor declared")
        return spec

    def set_member_availability(
        self, team: str, agent: str, status: str, *, auth: AuthLike
    ) -> None:
        """Live availability of a member (overrides the spec's): `available`, `busy`, `offline`.
        Durable. Back to `available`, the member serves handoffs queued for its
        specialization at once (oldest first, as far as its `max_workload` allows)."""
        self._team_for(team, require(auth, OPERATOR))
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

    def member_availability(self, team: str, *, auth: AuthLike) -> dict[str, str]:
        return self._availability.effective(self._team_for(team, require(auth, OPERATOR)))

    async def create_team(self, spec: Team | Mapping[str, Any], *, auth: AuthLike) -> Team:
        """Create (or replace) a team from code (`admin`), validated like a spec file: the Team
        model, members that are declared agents, targets that are specializations or `human`."""
        ctx = require(auth, ADMIN)
        team = team_of(spec)
        if team.workspace is not None and not ctx.covers(team.workspace):
            raise PermissionDeniedError(
                f"user {ctx.user_id!r} does not work in workspace {team.workspace!r}"
            )
        applied = self._applied
        self._reload(project_with_team(team, specs=applied.project, declared=applied.declared))
        self._ctx.events.emit("team:created", {"team": team.name})
        return team
