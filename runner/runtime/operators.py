"""The operator side of teams: escalation decisions, the human queue, requested handoffs, teams
and member availability created or changed from code.

Role: `Operators` is attached once to a `Lifecycle` (`operators_of(lc)`, idempotent). It

  - reacts to the runtime's events so that what the team router decides has its effects:
    `escalation:*` events are recorded in the escalations table (`rt_esc_escalations`) and an
    opened level's `notify` channels are told through the runtime's `Notifier` (in the
    background: a failing channel never breaks a session); a session entering
    `awaiting_human` is put in the durable human queue (`rt_hq_items`) and leaves it when it
    becomes active again or ends; what the user writes meanwhile is kept for the operator;
  - offers the operator API: `approve_escalation`, `reject_escalation`, `accept_escalation`,
    `human_queue`, `claim`, `answer`, `hand_back`, `handle_agent_handoff`, `create_team`,
    `set_member_availability`, `pending_escalations`;
  - wires the team routers to the runtime's clock and to the live availability board (also
    for routers rebuilt by `Lifecycle.reload`).

Invariants:
  - Every change to a session goes through `Lifecycle.apply_decision` (same order of events,
    same persistence as a routed turn); nothing here writes `rt_sessions`.
  - Everything an operator needs after a restart is durable: a new Lifecycle on the same
    registry file finds pending escalations (session rows + `rt_esc_escalations`), the human
    queue with its claims, and the availability operators set.
  - Operator decisions name who decided (`by` / `operator`), recorded in the escalation.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from runner.runtime.channels import Notification
from runner.runtime.decisions import HUMAN, Handoff, RouteDecision, primary_member
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
    claim,
    hand_back,
    reject,
)
from runner.runtime.events import Event
from runner.runtime.session import AuthContext, AuthLike
from runner.runtime.teams import (
    AVAILABILITY,
    TeamRouter,
    check_team,
    escalation_event_data,
)
from runner.spec.models import Envelope, Team
from runner.spec.project import Position, Project, SpecDocument
from runner.state.humanqueue import HumanQueueStore, QueueItem, StoredEscalation, TranscriptEntry
from runner.state.sessions import SessionRow

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

PENDING = ("pending_approval", "suggested")
CODE_POSITION = Position("<create_team>", 1, 1)


class EscalationNotPendingError(LifecycleError):
    """The session has no escalation in a state that allows the operator's decision."""


class HumanQueueError(LifecycleError):
    """The session is not in the human queue, or another operator holds it."""


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
        self.store = HumanQueueStore(lc.store.path, connection=lc.store.connection)
        self._flush_handle: asyncio.TimerHandle | None = None
        self.board: dict[str, dict[str, str]] = self.store.availability(self.env)
        self._human_reason: dict[str, tuple[str | None, str | None]] = {}
        self._escalated: set[str] = {
            e.session_id for e in self.store.escalations(self.env, open_sessions_only=True)
        }
        self._offs = [
            lc.on("escalation:*", self._on_escalation),
            lc.on("handoff:initiated", self._on_handoff),
            lc.on("session:state-changed", self._on_state),
            lc.on("human:message-received", self._on_user_message),
        ]
        self._closed = False
        self._offs.append(lc.on_router_built(self._wire))
        self._backfill()

    def close(self) -> None:
        """Stop reacting to events and close the store (idempotent; the Lifecycle's close
        calls it)."""
        if self._closed:
            return
        self._closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for off in self._offs:
            off()
        self._offs = []
        _ATTACHED.pop(self.lc, None)
        self.store.close()

    # ------------------------------------------------------------ wiring

    def _wire(self, router: Any) -> None:
        if isinstance(router, TeamRouter):
            router.clock = self.lc.clock
            router.availability = self.board.setdefault(router.team.name, {})

    def router(self, team: str) -> TeamRouter:
        router = self.lc.routers.get(team)
        if router is None:
            raise UnknownTeamError(f"team.{team} is neither applied nor declared")
        if not isinstance(router, TeamRouter):
            raise LifecycleError(
                f"team.{team} is routed by {type(router).__name__}, not the team router; "
                "operators need runner.runtime.teams.build_team_router"
            )
        return router

    def _open_rows(self) -> list[SessionRow]:
        """Every open session of the environment, the in-memory row when this runtime has it."""
        return self.lc.open_rows()

    def _backfill(self) -> None:
        """Catch up with what happened while no operators were attached (e.g. sessions that
        went to a person in a runtime that never attached them)."""
        for row in self._open_rows():
            if _well_formed(row.escalation) and row.kind == "team":
                assert row.escalation is not None
                self._escalated.add(row.id)
                self.store.record_escalation(
                    self.env, row.escalation, team=row.target, at=row.last_activity_at
                )
            if row.state == "awaiting_human" and self.store.get(row.id) is None:
                self._enqueue_row(row, at=row.last_activity_at)

    # ------------------------------------------------------------ reacting to events

    def _on_escalation(self, event: Event) -> None:
        data = event.data
        esc = data.get("escalation")
        if not _well_formed(esc):
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

    def _on_handoff(self, event: Event) -> None:
        if event.data.get("to") == HUMAN:
            sid = str(event.data.get("session_id"))
            self._human_reason[sid] = (event.data.get("trigger"), event.data.get("reason"))

    def _on_state(self, event: Event) -> None:
        data = event.data
        sid = str(data.get("session_id"))
        to, was = data.get("to"), data.get("from")
        if to == "awaiting_human":
            self._enqueue(sid, at=event.at)
        elif was == "awaiting_human":
            self.store.remove(sid)
        if to == "ended":
            self._human_reason.pop(sid, None)
            if sid in self._escalated:
                self._escalated.discard(sid)
                self.store.session_closed(sid)
                self._schedule_flush()

    def _enqueue(self, session_id: str, *, at: float) -> None:
        row = self.lc.store.load(session_id)  # just saved by the state change
        if row is not None:
            self._enqueue_row(row, at=at)

    def _enqueue_row(self, row: SessionRow, *, at: float) -> None:
        session_id = row.id
        trigger, reason = self._human_reason.pop(session_id, (None, None))
        esc = row.escalation if row.escalation and row.escalation.get("target") == HUMAN else None
        if esc is not None and reason is None:
            reason = f"escalation level {esc.get('level')}"
        self.store.enqueue(
            QueueItem(
                session_id=session_id,
                env=row.env,
                team=row.target if row.kind == "team" else None,
                workspace_id=row.workspace_id,
                user_id=row.user_id,
                reason=reason or ("requested: " + trigger if trigger else row.reason),
                trigger=trigger,
                escalation_id=None if esc is None or not esc.get("id") else str(esc["id"]),
                level=None if esc is None else int(esc.get("level") or 0) or None,
                previous_agent=row.router_state.get("before_human") or row.current_agent,
                priority=row.priority,
                enqueued_at=at,
            )
        )

    def _on_user_message(self, event: Event) -> None:
        sid = str(event.data.get("session_id"))
        text = str(event.data.get("text") or "")
        self.store.add_message(sid, role="user", author=None, text=text, at=event.at)
        row = self._row(sid)
        if row is not None:
            self._append_to_conversation(row, "user", text)

    def _append_to_conversation(self, row: SessionRow, role: str, text: str) -> None:
        """Best effort: providers that can append items (the local one) keep the person's part
        of the conversation, so the agents see it after a hand-back."""
        provider: Any = self.lc.provider
        add = getattr(provider, "add_items", None) or getattr(
            getattr(provider, "store", None), "add_items", None
        )
        if add is None:
            return
        try:
            add(row.conversation_id, [(role, text)])
        except Exception:
            log.warning("session %s: could not record a message in the conversation", row.id)

    # ------------------------------------------------------------ helpers

    def _row(self, session_id: str) -> SessionRow | None:
        return self.lc.session_row(session_id)

    def _team_row(self, session_id: str) -> SessionRow:
        row = self._row(session_id)
        if row is None or row.env != self.env:
            raise SessionNotFoundError(session_id)
        if row.state == "ended":
            raise SessionStateError(session_id, "ended", f"it ended ({row.reason})")
        if row.kind != "team":
            raise LifecycleError(f"session {session_id!r} is with an agent, not a team")
        return row

    def _auth(self, row: SessionRow, who: str) -> AuthContext:
        return AuthContext.operator(who, workspace_id=row.workspace_id)

    def _workload(self, agent: str) -> int:
        return self.lc.workload(agent)

    def _escalation(self, row: SessionRow, action: str) -> Escalation:
        if row.escalation is None:
            raise EscalationNotPendingError(f"session {row.id!r} has no escalation to {action}")
        if not _well_formed(row.escalation):
            raise EscalationNotPendingError(
                f"session {row.id!r} has an escalation this runtime cannot read: "
                f"{dict(row.escalation)!r}"
            )
        return Escalation.from_dict(row.escalation)

    async def _apply(self, row: SessionRow, decision: RouteDecision, *, who: str) -> None:
        await self.lc.apply_decision(row.id, decision, auth=self._auth(row, who))

    # ------------------------------------------------------------ escalation decisions

    async def approve_escalation(self, session_id: str, *, by: str) -> Escalation:
        """pending_approval -> approved; the level's effect follows (a person or a handoff)."""
        return await self._decide(session_id, by=by, action="approve")

    async def accept_escalation(self, session_id: str, *, by: str) -> Escalation:
        """suggested -> approved; the level's effect follows."""
        return await self._decide(session_id, by=by, action="accept")

    async def reject_escalation(
        self, session_id: str, *, by: str, reason: str | None = None
    ) -> Escalation:
        """pending_approval or suggested -> rejected; the session carries on as it was."""
        row = self._team_row(session_id)
        esc = self._escalation(row, "reject")
        try:
            done, names = reject(esc, by=by, now=self.lc.clock.now(), reason=reason)
        except EscalationStateError as exc:
            raise EscalationNotPendingError(str(exc)) from None
        events = tuple(
            (n, escalation_event_data(done, team=row.target, by=by, reason=reason)) for n in names
        )
        decision = RouteDecision(agent=row.current_agent, escalation=done.as_dict(), events=events)
        await self._apply(row, decision, who=by)
        return done

    async def _decide(
        self, session_id: str, *, by: str, action: Literal["approve", "accept"]
    ) -> Escalation:
        row = self._team_row(session_id)
        esc = self._escalation(row, action)
        transition = approve if action == "approve" else accept_suggestion
        try:
            done, names = transition(esc, by=by, now=self.lc.clock.now())
        except EscalationStateError as exc:
            raise EscalationNotPendingError(str(exc)) from None
        router = self.router(row.target)
        events = tuple((n, escalation_event_data(done, team=row.target, by=by)) for n in names)
        decision = router.effect_decision(
            done,
            current_agent=row.current_agent,
            router_state=row.router_state,
            workload=self._workload,
            events=events,
        )
        await self._apply(row, decision, who=by)
        return done

    def pending_escalations(self, *, workspace: str | None = None) -> list[StoredEscalation]:
        """Escalations waiting for an operator (pending approval or suggested) of open sessions."""
        out: list[StoredEscalation] = []
        for row in sorted(self._open_rows(), key=lambda r: (r.created_at, r.id)):
            esc = row.escalation
            if esc is None or esc.get("status") not in PENDING:
                continue
            if workspace is not None and row.workspace_id != workspace:
                continue
            team = row.target if row.kind == "team" else None
            out.append(StoredEscalation(self.env, team, True, dict(esc)))
        return out

    def escalation_history(self, session_id: str) -> list[StoredEscalation]:
        return self.store.escalations(self.env, session_id=session_id)

    # ------------------------------------------------------------ the human queue

    def human_queue(self, workspace: str | None = None) -> list[QueueItem]:
        """Sessions waiting for (or held by) a person: most urgent first, then oldest."""
        return self.store.items(self.env, workspace=workspace)

    def transcript(self, session_id: str) -> list[TranscriptEntry]:
        """What the user and the operators wrote while a person had the session."""
        return self.store.messages(session_id)

    def _queued(self, session_id: str) -> tuple[SessionRow, QueueItem]:
        row = self._team_or_agent_row(session_id)
        item = self.store.get(session_id)
        if item is None or row.state != "awaiting_human":
            raise HumanQueueError(f"session {session_id!r} is not waiting for a person")
        return row, item

    def _team_or_agent_row(self, session_id: str) -> SessionRow:
        row = self._row(session_id)
        if row is None or row.env != self.env:
            raise SessionNotFoundError(session_id)
        if row.state == "ended":
            raise SessionStateError(session_id, "ended", f"it ended ({row.reason})")
        return row

    async def claim(self, session_id: str, *, operator: str) -> QueueItem:
        """Take a waiting session; HumanQueueError when another operator holds it."""
        row, item = self._queued(session_id)
        now = self.lc.clock.now()
        if not self.store.claim(session_id, operator=operator, at=now):
            holder = (self.store.get(session_id) or item).claimed_by
            raise HumanQueueError(f"session {session_id!r} is already claimed by {holder!r}")
        events: list[tuple[str, Mapping[str, Any]]] = [
            ("human:claimed", {"operator": operator, "team": item.team})
        ]
        escalation: dict[str, Any] | None = None
        if _well_formed(row.escalation) and (row.escalation or {}).get("target") == HUMAN:
            assert row.escalation is not None
            esc = Escalation.from_dict(row.escalation)
            if esc.status in ("in_effect", "approved"):
                done, names = claim(esc, operator=operator, now=now)
                escalation = done.as_dict()
                events.extend(
                    (n, escalation_event_data(done, team=item.team, operator=operator))
                    for n in names
                )
        decision = RouteDecision(agent=None, escalation=escalation, events=tuple(events))
        await self._apply(row, decision, who=operator)
        claimed = self.store.get(session_id)
        assert claimed is not None
        return claimed

    def _held(self, session_id: str, operator: str, action: str) -> tuple[SessionRow, QueueItem]:
        row, item = self._queued(session_id)
        if item.claimed_by != operator:
            who = "nobody" if item.claimed_by is None else repr(item.claimed_by)
            raise HumanQueueError(
                f"cannot {action} session {session_id!r}: it is claimed by {who}, not "
                f"{operator!r} (claim it first)"
            )
        return row, item

    async def answer(self, session_id: str, *, operator: str, text: str) -> TranscriptEntry:
        """The operator who claimed the session answers the user (recorded in the conversation
        and in the transcript)."""
        row, item = self._held(session_id, operator, "answer")
        now = self.lc.clock.now()
        self.store.add_message(session_id, role="operator", author=operator, text=text, at=now)
        self._append_to_conversation(row, "assistant", text)
        decision = RouteDecision(
            agent=None,
            events=(("human:answered", {"operator": operator, "text": text, "team": item.team}),),
        )
        await self._apply(row, decision, who=operator)
        return TranscriptEntry(session_id, "operator", operator, text, now)

    async def hand_back(self, session_id: str, *, operator: str) -> str:
        """Return the session to the agents: active again, with the member that had it before
        the person (or the team's primary). Returns that member."""
        row, item = self._held(session_id, operator, "hand back")
        back = self._member_before(row, item)
        escalation: dict[str, Any] | None = None
        events: list[tuple[str, Mapping[str, Any]]] = []
        if _well_formed(row.escalation) and (row.escalation or {}).get("status") == "claimed":
            assert row.escalation is not None
            done, names = hand_back(
                Escalation.from_dict(row.escalation), operator=operator, now=self.lc.clock.now()
            )
            escalation = done.as_dict()
            events.extend(
                (n, escalation_event_data(done, team=item.team, operator=operator)) for n in names
            )
        events.append(("human:handed-back", {"operator": operator, "to": back, "team": item.team}))
        router_state = {k: v for k, v in row.router_state.items() if k != "before_human"}
        decision = RouteDecision(
            agent=back,
            handoffs=(Handoff(HUMAN, back, None, f"handed back by {operator}"),),
            state="active",
            escalation=escalation,
            router_state=router_state,
            events=tuple(events),
        )
        await self._apply(row, decision, who=operator)
        return back

    def _member_before(self, row: SessionRow, item: QueueItem) -> str:
        declared = self.lc.declared
        team = declared.teams.get(row.target) if row.kind == "team" else None
        if team is None:
            return row.target  # an agent session: back to its agent
        members = {m.agent for m in team.members}
        for candidate in (row.router_state.get("before_human"), item.previous_agent):
            if candidate in members:
                return str(candidate)
        return primary_member(team)

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
        router = self.router(row.target)
        try:
            decision = router.request_handoff(
                session_id=session_id,
                current_agent=row.current_agent,
                router_state=row.router_state,
                escalation=row.escalation,
                target=target_specialization,
                reason=reason,
                turn=row.turns,
                workload=self._workload,
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
        Durable; queued handoffs are re-tried on each session's next message."""
        router = self.router(team)
        if status not in AVAILABILITY:
            raise LifecycleError(f"availability {status!r} is not one of {', '.join(AVAILABILITY)}")
        if agent not in {m.agent for m in router.team.members}:
            raise LifecycleError(f"agent.{agent} is not a member of team.{team}")
        now = self.lc.clock.now()
        self.board.setdefault(team, {})[agent] = status
        router.availability = self.board[team]
        self.store.set_availability(self.env, team, agent, status, at=now)
        self.lc.events.emit(
            "team:availability-changed",
            {"team": team, "agent": agent, "status": status},
            at=now,
        )

    def member_availability(self, team: str) -> dict[str, str]:
        router = self.router(team)
        live = self.board.get(team, {})
        return {m.agent: live.get(m.agent, m.availability) for m in router.team.members}

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


def _well_formed(escalation: Any) -> bool:
    """An escalation as this module's router writes it (other routers may store anything)."""
    if not isinstance(escalation, Mapping):
        return False
    try:
        Escalation.from_dict(escalation)
    except (EscalationStateError, KeyError, TypeError, ValueError):
        return False
    return True


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
