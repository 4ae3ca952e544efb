"""The operator side of teams: escalation decisions, the human queue, requested handoffs, teams
and member availability created or changed from code.

Role: `Operators` is attached once to a `Lifecycle` (`operators_of(lc)`, idempotent; the
Lifecycle attaches it at open). It

  - reacts to the runtime's events so that what the team router decides has its effects:
    escalations are recorded and notified (`runner.runtime.escalations`), sessions waiting for
    a person are queued (`runner.runtime.human_queue`);
  - offers the operator API: `approve_escalation`, `reject_escalation`, `accept_escalation`,
    `pending_escalations`, `escalation_history`, `human_queue`, `transcript`, `claim`,
    `answer`, `hand_back` (delegated to those two parts), `handle_agent_handoff`,
    `create_team`, `set_member_availability`, `member_availability` (here);
  - wires the team routers to the runtime's clock and to the live availability board (also
    for routers rebuilt by `Lifecycle.reload`, through `Lifecycle.on_router_built`).

It uses only the Lifecycle's public API (`routers`, `session_row`, `open_rows`, `workload`,
`declared`, `apply_decision`, ...) and shares the session store's SQLite connection.

Invariants:
  - Every change to a session goes through `Lifecycle.apply_decision` (same order of events,
    same persistence as a routed turn); nothing here writes `rt_sessions`.
  - Everything an operator needs after a restart is durable: a new Lifecycle on the same
    registry file finds pending escalations (session rows + `rt_esc_escalations`), the human
    queue with its claims, and the availability operators set.
  - Operator decisions name who decided (`by` / `operator`), recorded in the escalation.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from runner.runtime.errors import LifecycleError, SessionStateError
from runner.runtime.escalation import Escalation
from runner.runtime.escalations import EscalationDesk, EscalationNotPendingError, team_router
from runner.runtime.events import Event
from runner.runtime.human_queue import HumanQueue, HumanQueueError
from runner.runtime.session import AuthLike
from runner.runtime.teams import MemberAvailability, RouteDecision, TeamRouter, check_team
from runner.spec.models import Envelope, Team
from runner.spec.project import Position, Project, SpecDocument
from runner.spec.vocabulary import HUMAN
from runner.state.operators import QueueItem, StoredEscalation, TranscriptEntry

if TYPE_CHECKING:
    from runner.runtime.lifecycle import Lifecycle

log = logging.getLogger("runner.runtime.operators")

__all__ = [
    "EscalationNotPendingError",
    "HandoffResult",
    "HumanQueueError",
    "Operators",
    "QueueItem",
    "operators_of",
]

CODE_POSITION = Position("<create_team>", 1, 1)


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


_ATTACHED: weakref.WeakKeyDictionary[Any, Operators] = weakref.WeakKeyDictionary()


def operators_of(lc: Lifecycle) -> Operators:
    """The operators attached to `lc` (attached now if they were not)."""
    ops = _ATTACHED.get(lc)
    if ops is None:
        ops = _ATTACHED[lc] = Operators(lc)
    return ops


class Operators:
    """See the module docstring. Build with `operators_of(lc)`."""

    def __init__(self, lc: Lifecycle) -> None:
        self.lc = lc
        self.env = lc.env.name
        # the session store's connection: a second one would make the runtime re-read the
        # registry on every turn (PRAGMA data_version changes with other connections' writes)
        self.store = lc.operator_store
        self.board: MemberAvailability = lc.availability
        self.escalations = EscalationDesk(lc, self.store)
        self.queue = HumanQueue(lc, self.store)
        self._offs = [
            lc.on("escalation:*", self.escalations.on_escalation),
            lc.on("handoff:initiated", self.queue.on_handoff),
            lc.on("session:state-changed", self._on_state),
            lc.on("human:message-received", self.queue.on_user_message),
        ]
        self._closed = False
        # Catch up with what happened while no operators were attached (e.g. sessions that
        # went to a person in a runtime that never attached them).
        for row in lc.open_rows():
            self.escalations.backfill(row)
            self.queue.backfill(row)

    def close(self) -> None:
        """Stop reacting to events and close the store (idempotent; the Lifecycle's close
        calls it)."""
        if self._closed:
            return
        self._closed = True
        self.escalations.close()
        for off in self._offs:
            off()
        self._offs = []
        _ATTACHED.pop(self.lc, None)
        self.store.close()

    def router(self, team: str) -> TeamRouter:
        return team_router(self.lc, team)

    def _on_state(self, event: Event) -> None:
        data = event.data
        sid = str(data.get("session_id"))
        to = data.get("to")
        self.queue.on_state(sid, to=to, was=data.get("from"), at=event.at)
        if to == "ended":
            self.escalations.session_ended(sid)

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
        urgency: Literal["low", "medium", "high", "urgent"] = "medium",
        auth: AuthLike,
    ) -> HandoffResult:
        """Hand a team session to a specialization (or `human`) on request: the same flow as a
        fired trigger (load balancing, `on_no_free_member`, the escalation path)."""
        session = self.lc.get_session(session_id, auth=auth)  # checks access and workspace
        row = session.row
        if row.state == "ended":
            raise SessionStateError(session_id, "ended", f"it ended ({row.reason})")
        if row.kind != "team":
            raise LifecycleError(f"session {session_id!r} is with an agent, not a team")
        if row.state == "awaiting_human":
            raise SessionStateError(
                session_id, "awaiting_human", "a person has it; the operator hands it back"
            )
        router = team_router(self.lc, row.target)
        try:
            decision = router.request_handoff(
                session_id=session_id,
                current_agent=row.current_agent,
                router_state=row.router_state,
                escalation=row.escalation,
                target=target_specialization,
                reason=reason,
                turn=row.turns,
                workload=self.lc.workload,
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
        await self.lc.apply_decision(session_id, decision, auth=auth)
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
        router = team_router(self.lc, team)
        now = self.lc.clock.now()
        self.board.set(router.team, agent, status, at=now)
        self.lc.events.emit(
            "team:availability-changed",
            {"team": team, "agent": agent, "status": status},
            at=now,
        )
        if status == "available":
            for member in router.team.members:
                if member.agent == agent:
                    self.lc.serve_waiting_handoffs(team, member.specialization)

    def member_availability(self, team: str) -> dict[str, str]:
        return self.board.effective(team_router(self.lc, team).team)

    async def create_team(self, spec: Team | Mapping[str, Any]) -> Team:
        """Create (or replace) a team from code, validated like a spec file: the Team model,
        members that are declared agents, targets that are specializations or `human`."""
        if isinstance(spec, Team):
            team = spec
        else:
            body = {"apiVersion": "runner/v1", "kind": "Team", **dict(spec)}
            try:
                team = Team.model_validate(body)
            except ValidationError as exc:
                raise LifecycleError(f"team: invalid definition: {exc}") from None
        declared = self.lc.declared
        project = Project()  # what the runtime will run with
        checked = Project()  # plus what it runs with but the specs lack (applied only)
        for doc in self.lc.project:
            if doc.address != f"team.{team.name}":
                project.add(doc)
                checked.add(doc)
        applied = Position("<applied>", 1, 1)
        known: list[Envelope] = [*declared.agents.values(), *declared.escalation_paths.values()]
        for known_spec in known:
            checked.add(SpecDocument(spec=known_spec, position=applied))  # no-op when present
        project.add(SpecDocument(spec=team, position=CODE_POSITION))
        checked.add(SpecDocument(spec=team, position=CODE_POSITION))
        problems = _checks_problems(checked)
        if problems is None:  # no spec checks module: the team's own reference checks
            problems = check_team(
                team, agents=set(declared.agents), escalation_paths=declared.escalation_paths
            )
        if problems:
            raise LifecycleError(f"team.{team.name}: " + "; ".join(dict.fromkeys(problems)))
        self.lc.reload(project)
        self.lc.events.emit("team:created", {"team": team.name}, at=self.lc.clock.now())
        return team


def _checks_problems(project: Project) -> list[str] | None:
    """Errors the spec checks find in the team created from code; None without the checks."""
    try:
        from runner.spec import checks
    except ImportError:
        return None
    check = getattr(checks, "check_project", None)
    if check is None:
        return None
    try:
        found = check(project)
    except Exception:  # a checks bug must not hide the team's own reference checks
        log.exception("spec checks failed on the project with a team created from code")
        return None
    return [
        p.message
        for p in found
        if getattr(p, "file", None) == CODE_POSITION.file and p.severity == "error"
    ]
