"""The human queue: sessions waiting for a person, and the operators who take them.

Role: part of the operator side (`runner.runtime.operators`). A session entering
`awaiting_human` (a `human` handoff, an escalation level targeting a person, or
`Lifecycle.await_human`) is put in the durable queue (`runner.state.operators.HumanQueueStore`)
with why it is there; it leaves the queue when it becomes active again or ends. What the user
writes meanwhile is kept for the operator (the transcript) and, where the provider allows
(`ConversationItems`), in the conversation. An operator `claim`s a waiting session, `answer`s
the user and `hand_back`s it to the agents.

Invariants:
  - Every change to a session goes through `OperatorSessions.apply_as`; nothing here writes a
    session row.
  - The queue, claims and transcript are written at once: a new process on the same registry
    file finds them as they were.
  - Two operators never both hold a session (`claim` is a conditional UPDATE); only the
    operator holding a session answers or hands it back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from runner.runtime.clock import Clock
from runner.runtime.errors import LifecycleError
from runner.runtime.escalation import (
    IN_EFFECT,
    claim,
    escalation_event_data,
    hand_back,
    read_escalation,
)
from runner.runtime.events import Event
from runner.runtime.operators.acting import OperatorSessions
from runner.runtime.sessions import AppliedState
from runner.runtime.teams import Handoff, RouteDecision, primary_member
from runner.spec.vocabulary import HUMAN
from runner.state.operators import HumanQueueStore, QueueItem, TranscriptEntry
from runner.state.sessions import SessionRow

__all__ = ["ConversationItems", "HumanQueue", "HumanQueueError"]

log = logging.getLogger("runner.runtime.operators")


class HumanQueueError(LifecycleError):
    """The session is not in the human queue, or another operator holds it."""


@runtime_checkable
class ConversationItems(Protocol):
    """A provider (or its store) that can append items to a conversation (the local one)."""

    def add_items(self, conversation_id: str, items: list[tuple[str, str]]) -> Any: ...


class HumanQueue:
    """The queue of sessions a person has or should take (see the module docstring)."""

    def __init__(
        self,
        *,
        env: str,
        store: HumanQueueStore,
        sessions: OperatorSessions,
        applied: AppliedState,
        conversation: ConversationItems | None,
        clock: Clock,
    ) -> None:
        self._env = env
        self.store = store
        self._sessions = sessions
        self._applied = applied
        self._conversation = conversation
        self._clock = clock
        self._human_reason: dict[str, tuple[str | None, str | None]] = {}

    # ------------------------------------------------------------ following the sessions

    def backfill(self, row: SessionRow) -> None:
        """Queue a session found waiting for a person at attach time (if it is not yet)."""
        if row.state == "awaiting_human" and self.store.get(row.id) is None:
            self._enqueue_row(row, at=row.last_activity_at)

    def on_handoff(self, event: Event) -> None:
        if event.data.get("to") == HUMAN:
            sid = str(event.data.get("session_id"))
            self._human_reason[sid] = (event.data.get("trigger"), event.data.get("reason"))

    def on_state(self, session_id: str, *, to: Any, was: Any, at: float) -> None:
        if to == "awaiting_human":
            row = self._sessions.row(session_id)  # as the state change just saved it
            if row is not None:
                self._enqueue_row(row, at=at)
        elif was == "awaiting_human":
            self.store.remove(session_id)
        if to == "ended":
            self._human_reason.pop(session_id, None)

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

    def on_user_message(self, event: Event) -> None:
        sid = str(event.data.get("session_id"))
        text = str(event.data.get("text") or "")
        self.store.add_message(sid, role="user", author=None, text=text, at=event.at)
        row = self._sessions.row(sid)
        if row is not None:
            self._append_to_conversation(row, "user", text)

    def _append_to_conversation(self, row: SessionRow, role: str, text: str) -> None:
        """Best effort: providers that can append items (the local one) keep the person's part
        of the conversation, so the agents see it after a hand-back."""
        if self._conversation is None:
            return
        try:
            self._conversation.add_items(row.conversation_id, [(role, text)])
        except Exception:
            log.warning("session %s: could not record a message in the conversation", row.id)

    # ------------------------------------------------------------ the operator API

    def items(self, workspace: str | None = None) -> list[QueueItem]:
        """Sessions waiting for (or held by) a person: most urgent first, then oldest."""
        return self.store.items(self._env, workspace=workspace)

    def transcript(self, session_id: str) -> list[TranscriptEntry]:
        """What the user and the operators wrote while a person had the session."""
        return self.store.messages(session_id)

    def _queued(self, session_id: str) -> tuple[SessionRow, QueueItem]:
        row = self._sessions.open_row(session_id, team_only=False)
        item = self.store.get(session_id)
        if item is None or row.state != "awaiting_human":
            raise HumanQueueError(f"session {session_id!r} is not waiting for a person")
        return row, item

    async def claim(self, session_id: str, *, operator: str) -> QueueItem:
        """Take a waiting session; HumanQueueError when another operator holds it."""
        row, item = self._queued(session_id)
        now = self._clock.now()
        if not self.store.claim(session_id, operator=operator, at=now):
            holder = (self.store.get(session_id) or item).claimed_by
            raise HumanQueueError(f"session {session_id!r} is already claimed by {holder!r}")
        events: list[tuple[str, Mapping[str, Any]]] = [
            ("human:claimed", {"operator": operator, "team": item.team})
        ]
        escalation: dict[str, Any] | None = None
        esc = read_escalation(row.escalation)
        if esc is not None and esc.target == HUMAN and esc.status in IN_EFFECT:
            done, names = claim(esc, operator=operator, now=now)
            escalation = done.as_dict()
            events.extend(
                (n, escalation_event_data(done, team=item.team, operator=operator)) for n in names
            )
        decision = RouteDecision(agent=None, escalation=escalation, events=tuple(events))
        await self._sessions.apply_as(row, decision, who=operator)
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
        now = self._clock.now()
        self.store.add_message(session_id, role="operator", author=operator, text=text, at=now)
        self._append_to_conversation(row, "assistant", text)
        decision = RouteDecision(
            agent=None,
            events=(("human:answered", {"operator": operator, "text": text, "team": item.team}),),
        )
        await self._sessions.apply_as(row, decision, who=operator)
        return TranscriptEntry(session_id, "operator", operator, text, now)

    async def hand_back(self, session_id: str, *, operator: str) -> str:
        """Return the session to the agents: active again, with the member that had it before
        the person (or the team's primary). Returns that member."""
        row, item = self._held(session_id, operator, "hand back")
        back = self._member_before(row, item)
        escalation: dict[str, Any] | None = None
        events: list[tuple[str, Mapping[str, Any]]] = []
        esc = read_escalation(row.escalation)
        if esc is not None and esc.status == "claimed":
            done, names = hand_back(esc, operator=operator, now=self._clock.now())
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
        await self._sessions.apply_as(row, decision, who=operator)
        return back

    def _member_before(self, row: SessionRow, item: QueueItem) -> str:
        declared = self._applied.declared
        team = declared.teams.get(row.target) if row.kind == "team" else None
        if team is None:
            return row.target  # an agent session: back to its agent
        members = {m.agent for m in team.members}
        for candidate in (row.router_state.get("before_human"), item.previous_agent):
            if candidate in members:
                return str(candidate)
        return primary_member(team)
