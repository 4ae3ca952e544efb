"""The turn path: one user message in, one reply (or a handoff to a person) out.

Role: `Session.send` -> `Turns.send` -> `Turns.turn`. A turn checks the session's state and
`max_turns`, admits the tokens on every pool the session holds, asks a team session's router
who answers (`runner.runtime.decisions`) and applies its decision, calls the provider with
the pinned agent version on the session's one conversation, and records counters and figures.
`Turns` also owns the team routers (rebuilt on every load) and applies decisions made outside
a turn (`apply_outside`: an operator's, an approved escalation's, a queued handoff served as
soon as a member frees up: `serve_waiting`, run by `runner.runtime.waiting`).

Invariants:
  - One turn at a time per session (a per-session asyncio lock); a turn refused by a pool
    changes nothing (admission before routing).
  - Nothing here touches the registry unless SQLite's `data_version` moved; turn counters are
    written behind (`LiveSessions.dirty`).
  - Event callbacks, channel deliveries and router bugs never break a turn: a failing router
    is logged and the current member answers.
  - Events of a decision follow `runner.runtime.decisions`: `handoff:initiated` before the
    reply, `handoff:completed` after it (`handoff:failed` when the provider fails).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from runner.providers.base import Provider, Reply
from runner.runtime.agents import AgentCatalog
from runner.runtime.applied import AppliedState, Declared
from runner.runtime.context import RuntimeContext
from runner.runtime.errors import SessionStateError, TurnFailedError
from runner.runtime.live import LiveSession, LiveSessions
from runner.runtime.monitoring import Subject
from runner.runtime.session import CHAT_ACCESS, AuthContext, TurnReply, check_auth
from runner.runtime.teams import (
    Handoff,
    PrimaryRouter,
    RouteDecision,
    Router,
    RouterFactory,
    TurnContext,
)
from runner.runtime.waiting import WaitKey
from runner.spec.vocabulary import HUMAN
from runner.state.sessions import SessionRow

__all__ = ["RouterHook", "Turns", "call_provider"]

log = logging.getLogger("runner.runtime")

RouterHook = Callable[[Router], None]


async def call_provider(provider: Provider, fn: Any, /, **kwargs: Any) -> Any:
    """Call a provider method: inline for the local provider, in a thread for remote ones."""
    if provider.remote:
        return await asyncio.to_thread(fn, **kwargs)
    return fn(**kwargs)


class Turns:
    """The turn path and the team routers of one runtime (see the module docstring)."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        applied: AppliedState,
        sessions: LiveSessions,
        agents: AgentCatalog,
        router_factory: RouterFactory,
    ) -> None:
        self._ctx = ctx
        self._applied = applied
        self._sessions = sessions
        self._agents = agents
        self._live = sessions.live
        self._dirty = sessions.dirty
        self._clock = ctx.clock
        self._pools = ctx.pools
        self._monitor = ctx.monitor
        self._provider = ctx.provider
        self._emit = ctx.emit
        self._router_factory = router_factory
        self._router_hooks: list[RouterHook] = []
        self.routers: dict[str, Router] = {}
        self._waiting = sessions.waiting
        self._waiting.serve = self.serve_waiting

    # ------------------------------------------------------------ routers

    def build_routers(self, declared: Declared) -> None:
        """One router per declared team (the primary answers when a factory fails)."""
        routers: dict[str, Router] = {}
        for name, team in declared.teams.items():
            path = declared.escalation_paths.get(team.workflow.escalation_path or "")
            try:
                router = self._router_factory(team, path)
                for hook in self._router_hooks:
                    hook(router)
            except Exception:
                log.exception("team.%s: router could not be built; the primary answers", name)
                router = PrimaryRouter(team, path)
            routers[name] = router
        self.routers = routers
        self._waiting.configure(declared.teams)

    def add_router_hook(self, hook: RouterHook) -> Callable[[], None]:
        """Call `hook` on every router built from now on and on the current ones; returns
        a function that removes it."""
        self._router_hooks.append(hook)
        for router in self.routers.values():
            hook(router)

        def off() -> None:
            if hook in self._router_hooks:
                self._router_hooks.remove(hook)

        return off

    # ------------------------------------------------------------ the turn

    async def send(
        self, session_id: str, text: str, *, auth: AuthContext, wait: float | None
    ) -> TurnReply:
        if CHAT_ACCESS not in auth.permissions:
            check_auth(auth)
        live = self._live.get(session_id)
        if live is None or live.row.workspace_id != auth.workspace_id:
            live = self._sessions.live_or_raise(session_id, auth)
        lock = live.lock
        if lock is None:
            lock = live.lock = asyncio.Lock()
        async with lock:
            return await self.turn(live, text, wait)

    async def turn(self, live: LiveSession, text: str, wait: float | None) -> TurnReply:
        row = live.row
        state = row.state
        if state == "ended":
            raise SessionStateError(row.id, "ended", f"it ended ({row.reason}); start a new one")
        if state == "paused":
            raise SessionStateError(row.id, "paused", "resume it before sending")
        if row.max_turns is not None and row.turns >= row.max_turns:
            self._sessions.end(live, "max_turns")
            return TurnReply(
                text="",
                agent=None,
                session_id=row.id,
                turn=row.turns,
                state="ended",
                reason="max_turns",
            )
        turn = row.turns + 1
        handoffs: tuple[Handoff, ...] = ()
        escalations = 0
        pools_manager = self._pools
        if row.pools and state != "awaiting_human":
            # Admission before routing, on every pool the session holds: a refused turn changes
            # nothing (no handoff half done). Tokens are charged to the answering agent's pools.
            await pools_manager.admit_tokens(row.pools, wait=wait)
        if row.kind == "team":
            decision = await self._route(live, text, turn)
            handoffs = decision.handoffs
            escalations = self.apply(live, decision)
            if row.state == "ended":
                return TurnReply(
                    text="",
                    agent=None,
                    session_id=row.id,
                    turn=row.turns,
                    state="ended",
                    handoffs=handoffs,
                    reason=row.reason,
                )
        answering = row.current_agent
        if answering is None or row.state == "awaiting_human":
            # Nobody answers: the message waits for a human (or the router decided so).
            row.turns = turn
            row.last_activity_at = self._clock.now()
            self._dirty.add(row.id)
            self._complete_handoffs(row, handoffs)
            self._record(
                row, None, 0.0, error=False, tokens=0, handoffs=handoffs, escalations=escalations
            )
            return TurnReply(
                text="",
                agent=None,
                session_id=row.id,
                turn=turn,
                state=row.state,
                handoffs=handoffs,
            )
        pin = row.pins.get(answering)
        if pin is None:  # a router chose an agent outside the session's members
            fresh = await self._agents.pin(answering)
            pin = row.pins[answering] = (fresh.foundry_name, fresh.version)
        pools = pools_manager.pools_for(answering)
        clock = self._clock
        provider = self._provider
        started = clock.monotonic()
        try:
            reply: Reply = await call_provider(
                provider,
                provider.respond,
                conversation_id=row.conversation_id,
                agent_name=pin[0],
                agent_version=pin[1],
                text=text,
            )
        except Exception as exc:
            ms = (clock.monotonic() - started) * 1000.0
            row.last_activity_at = clock.now()
            self._dirty.add(row.id)
            self._record(
                row, answering, ms, error=True, tokens=0, handoffs=handoffs, escalations=escalations
            )
            for h in handoffs:
                self._emit(
                    "handoff:failed", {"session_id": row.id, **h.as_dict(), "error": str(exc)}
                )
            raise TurnFailedError(row.id, answering, exc) from exc
        ms = (clock.monotonic() - started) * 1000.0
        tokens = reply.input_tokens + reply.output_tokens
        row.turns = turn
        row.input_tokens += reply.input_tokens
        row.output_tokens += reply.output_tokens
        now = clock.now()
        row.last_activity_at = now
        self._dirty.add(row.id)
        if pools:
            pools_manager.record_tokens(pools, tokens)
        self._record(
            row,
            answering,
            ms,
            error=False,
            tokens=tokens,
            handoffs=handoffs,
            escalations=escalations,
        )
        self._complete_handoffs(row, handoffs)
        stat = self._agents.stats.get(answering)
        if stat is not None:
            stat.last_used_at = now
        return TurnReply(
            text=reply.text,
            agent=answering,
            session_id=row.id,
            turn=turn,
            state=row.state,
            agent_version=pin[1],
            foundry_name=pin[0],
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            response_time_ms=ms,
            handoffs=handoffs,
        )

    def _record(
        self,
        row: SessionRow,
        agent: str | None,
        ms: float,
        *,
        error: bool,
        tokens: int,
        handoffs: tuple[Handoff, ...],
        escalations: int,
    ) -> None:
        monitor = self._monitor
        if not monitor.enabled:
            return
        subjects: list[Subject] = []
        if agent is not None:
            subjects.append(("agent", agent))
            subjects.extend(("pool", p) for p in self._pools.pools_for(agent))
        if row.kind == "team":
            subjects.append(("team", row.target))
        monitor.record_turn(
            subjects,
            now=self._clock.now(),
            ms=ms,
            error=error,
            tokens=tokens,
            handoffs=len(handoffs),
            escalations=escalations,
        )

    async def _route(self, live: LiveSession, text: str, turn: int) -> RouteDecision:
        row = live.row
        router = self.routers.get(row.target)
        declared = self._applied.declared
        team = declared.teams.get(row.target)
        if router is None or team is None:
            return RouteDecision(agent=None if row.state == "awaiting_human" else row.current_agent)
        ctx = TurnContext(
            session_id=row.id,
            team=team,
            escalation_path=declared.escalation_paths.get(team.workflow.escalation_path or ""),
            text=text,
            turn=turn,
            current_agent=row.current_agent,
            state=row.state,
            escalation=row.escalation,
            router_state=row.router_state,
            preferences=row.preferences,
            priority=row.priority,
            workload=self._sessions.workload,
        )
        try:
            result = router.route(ctx)
            if inspect.isawaitable(result):
                result = await result
            assert isinstance(result, RouteDecision)
            return result
        except Exception:
            log.exception("team.%s: router failed; the current member answers", row.target)
            return RouteDecision(agent=None if row.state == "awaiting_human" else row.current_agent)

    # ------------------------------------------------------------ decisions

    def apply(self, live: LiveSession, decision: RouteDecision) -> int:
        """Apply a router decision (see `runner.runtime.decisions`); escalations started."""
        waiting = self._waiting
        waiting.depth += 1
        try:
            escalations = self._apply(live, decision)
        finally:
            waiting.depth -= 1
        if waiting.pending:
            waiting.settle()  # a member this decision freed may serve a queued handoff
        return escalations

    def _apply(self, live: LiveSession, decision: RouteDecision) -> int:
        row = live.row
        sessions = self._sessions
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
            self._emit("handoff:initiated", {"session_id": row.id, **h.as_dict()})
        agent = decision.agent
        if agent == HUMAN:
            agent = None
        sessions.set_current(live, agent)
        if decision.state == "ended":
            sessions.end(live, "router")
        elif decision.state is not None and decision.state != row.state:
            sessions.transition(live, decision.state, reason=None)
        for event_type, data in decision.events:
            self._emit(event_type, {"session_id": row.id, **data})
        self._dirty.add(row.id)
        return escalations

    def apply_outside(self, live: LiveSession, decision: RouteDecision) -> None:
        """Apply a decision made outside a turn: handoffs complete at once, the row is saved."""
        row = live.row
        if row.state == "ended":
            raise SessionStateError(row.id, "ended", "it cannot change any more")
        waiting = self._waiting
        waiting.depth += 1  # this decision completes before a queued handoff it frees is served
        try:
            self._apply(live, decision)
            self._complete_handoffs(row, decision.handoffs)
            self._ctx.store.save_state(row)
            self._dirty.discard(row.id)
        finally:
            waiting.depth -= 1
        key = waiting.key_of.get(row.id)
        if key is not None and row.state != "awaiting_human":
            waiting.pending[key] = None  # e.g. handed back by a person: a member may be free
        if waiting.pending:
            waiting.settle()

    def serve_waiting(self, key: WaitKey) -> int:
        """Complete the handoffs queued for `key` (team, specialization), oldest first, while
        the team's router finds a free member; how many sessions were handed off.

        Each is applied like any decision outside a turn (`handoff:initiated`, then
        `handoff:completed` with `queued_for_s`; the row is saved). Ended sessions are
        dropped; sessions a person has (`awaiting_human`) keep waiting until handed back."""
        team, _ = key
        router = self.routers.get(team)
        serve = getattr(router, "serve_waiting", None)
        waiting = self._waiting
        if serve is None:
            return 0
        served = 0
        for indexed in waiting.waiters(key):
            live = self._live.get(indexed.row.id)
            if live is None or live.row.state == "ended":
                waiting.forget(indexed.row.id)
                continue
            row = live.row
            if row.state == "awaiting_human" or row.current_agent is None:
                continue
            decision = serve(
                current_agent=row.current_agent,
                router_state=row.router_state,
                workload=self._sessions.workload,
            )
            if decision is None:
                break  # no free member left for this specialization
            assert isinstance(decision, RouteDecision)
            self.apply_outside(live, decision)
            served += len(decision.handoffs)
        return served

    def _complete_handoffs(self, row: SessionRow, handoffs: tuple[Handoff, ...]) -> None:
        for h in handoffs:
            self._emit("handoff:completed", {"session_id": row.id, **h.as_dict()})
