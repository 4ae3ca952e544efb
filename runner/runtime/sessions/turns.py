"""The turn path: one user message in, one reply (or a handoff to a person) out.

Role: `Session.send` -> `SessionService.send` -> `Turns.send` -> `Turns.turn`. A turn checks the
session's state and `max_turns`, admits the tokens on every pool the session holds, asks a team
session's router who answers (`runner.runtime.teams` seam) and applies its decision
(`runner.runtime.sessions.changes`), calls the provider with the pinned agent version on the
session's one conversation (with the session's structured inputs for that agent,
`runner.runtime.sessions.configuration`), runs the function calls the reply asks for until the
model answers with a message (`runner.runtime.tools`, asking `SessionConfigs.tool_refusal`
before each), and hands the turn to `TurnAccounting` (price, ledger, turn log, figures). With
`on_text` the provider streams and each piece of text is handed over as it arrives.

Invariants:
  - One turn at a time per session: a per-session asyncio lock in this instance, and the
    session's lease across instances (`leases`), which re-reads a copy another instance made
    stale and writes the row when the turn ends; a turn refused by a pool changes nothing
    (admission before routing).
  - Nothing here touches the registry unless it changed (`AppliedState.refresh`); turn counters
    are written behind (`LiveSessions.dirty`).
  - Event callbacks, channel deliveries and router bugs never break a turn: a failing router
    is logged and the current member answers.
  - `handoff:initiated` comes before the reply, `handoff:completed` after it (`handoff:failed`
    when the provider fails).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from runner.providers.base import Provider, Reply, TextSink, ToolOutput
from runner.runtime.auth import CHAT_ACCESS, AuthContext, check_auth
from runner.runtime.context import RuntimeContext
from runner.runtime.errors import SessionStateError, TurnFailedError
from runner.runtime.monitoring import CostMeter, PerformanceMonitor, SessionLedger
from runner.runtime.pools import PoolManager, TokenTicket, estimate_tokens
from runner.runtime.sessions.accounting import TurnAccounting
from runner.runtime.sessions.agents import AgentCatalog
from runner.runtime.sessions.applied import AppliedState
from runner.runtime.sessions.changes import SessionChanges
from runner.runtime.sessions.configuration import SessionConfigs
from runner.runtime.sessions.handles import TurnReply
from runner.runtime.sessions.leases import SessionLeases
from runner.runtime.sessions.provider_calls import call_provider
from runner.runtime.sessions.routers import TeamRouters
from runner.runtime.sessions.table import LiveSession, LiveSessions
from runner.runtime.sessions.turn_recorder import TurnRecorder
from runner.runtime.teams import Handoff, RouteDecision, TurnContext
from runner.runtime.tools import Respond, ToolCatalog, ToolRounds
from runner.runtime.tracing import end_turn, tracing_active, turn_span
from runner.state.sessions import SessionRow

__all__ = ["Turns"]

log = logging.getLogger("runner.runtime")


class Turns:
    """The turn path of one runtime (see the module docstring)."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        provider: Provider,
        pools: PoolManager,
        monitor: PerformanceMonitor,
        applied: AppliedState,
        table: LiveSessions,
        changes: SessionChanges,
        agents: AgentCatalog,
        routers: TeamRouters,
        configs: SessionConfigs,
        costs: CostMeter,
        ledger: SessionLedger,
        recorder: TurnRecorder,
        tools: ToolCatalog,
        rounds: ToolRounds,
        leases: SessionLeases,
    ) -> None:
        self._leases = leases
        self._accounting = TurnAccounting(
            clock=ctx.clock,
            pools=pools,
            monitor=monitor,
            costs=costs,
            ledger=ledger,
            recorder=recorder,
        )
        self._tools = tools
        self._rounds = rounds
        self._applied = applied
        self._configs = configs
        self._table = table
        self._changes = changes
        self._agents = agents
        self._routers = routers
        self._live = table.live
        self._dirty = table.dirty
        self._clock = ctx.clock
        self._pools = pools
        self._provider = provider
        self._emit = ctx.emit
        self.events = ctx.events  # a streamed turn listens to its tool events

    # ------------------------------------------------------------ the turn

    async def send(
        self,
        session_id: str,
        text: str,
        *,
        auth: AuthContext,
        wait: float | None,
        on_text: TextSink | None = None,
    ) -> TurnReply:
        if CHAT_ACCESS not in auth.permissions:
            check_auth(auth)
        live = self._live.get(session_id)
        if live is None or not auth.covers(live.row.workspace_id):
            live = self._table.live_or_raise(session_id, auth)
        lock = live.lock
        if lock is None:
            lock = live.lock = asyncio.Lock()
        async with lock, self._leases.hold(live, wait=wait):
            row = live.row
            accounting = self._accounting
            accounting.refuse_if_spent(row)
            if not tracing_active():
                return accounting.charge(row, await self._logged_turn(live, text, wait, on_text))
            with turn_span(row) as span:
                reply = accounting.charge(row, await self._logged_turn(live, text, wait, on_text))
                end_turn(span, reply)
                return reply

    async def _logged_turn(
        self, live: LiveSession, text: str, wait: float | None, on_text: TextSink | None
    ) -> TurnReply:
        """`turn`, with a failed one written to the turn log (answered ones are charged)."""
        try:
            return await self.turn(live, text, wait, on_text)
        except TurnFailedError as exc:
            self._accounting.failed(live.row, exc.agent)
            raise

    async def turn(
        self, live: LiveSession, text: str, wait: float | None, on_text: TextSink | None = None
    ) -> TurnReply:
        row = live.row
        state = row.state
        if state == "ended":
            raise SessionStateError(row.id, "ended", f"it ended ({row.reason}); start a new one")
        if state == "paused":
            raise SessionStateError(row.id, "paused", "resume it before sending")
        if row.max_turns is not None and row.turns >= row.max_turns:
            self._changes.end(live, "max_turns")
            return TurnReply(
                text="",
                agent=None,
                session_id=row.id,
                turn=row.turns,
                state="ended",
                reason="max_turns",
            )
        turn = row.turns + 1
        pools_manager = self._pools
        ticket = None  # shared limits: the room reserved for this turn, settled below
        if row.pools and state != "awaiting_human":
            # Admission before routing, on every pool the session holds: a refused turn changes
            # nothing (no handoff half done). Tokens are charged to the answering agent's pools.
            # The message's own size is known now: one that cannot fit is refused unsent.
            ticket = await pools_manager.admit_tokens(
                row.pools, wait=wait, estimate=estimate_tokens(text)
            )
        try:
            return await self._answer(live, text, turn, ticket, on_text)
        except BaseException:
            if ticket is not None:
                pools_manager.record_tokens((), 0, ticket=ticket)  # nothing spent: drop it
            raise

    async def _answer(
        self,
        live: LiveSession,
        text: str,
        turn: int,
        ticket: TokenTicket | None,
        on_text: TextSink | None,
    ) -> TurnReply:
        row = live.row
        pools_manager = self._pools
        handoffs: tuple[Handoff, ...] = ()
        escalations = 0
        if row.kind == "team":
            decision = await self._route(live, text, turn)
            handoffs = decision.handoffs
            escalations = self._changes.apply(live, decision)
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
            self._changes.complete_handoffs(row, handoffs)
            self._accounting.count(
                row,
                None,
                0.0,
                error=False,
                tokens=0,
                handoffs=len(handoffs),
                escalations=escalations,
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
            inputs = self._configs.inputs_for(row, answering) if row.config else None
            extra: dict[str, Any] = {"structured_inputs": inputs} if inputs else {}
            if on_text is not None:
                extra["on_text"] = on_text
            reply: Reply = await call_provider(
                provider,
                provider.respond,
                conversation_id=row.conversation_id,
                agent_name=pin[0],
                agent_version=pin[1],
                text=text,
                **extra,
            )
            if reply.tool_calls:
                reply = await self._answer_calls(row, answering, pin, reply, extra)
        except Exception as exc:
            ms = (clock.monotonic() - started) * 1000.0
            row.last_activity_at = clock.now()
            self._dirty.add(row.id)
            self._accounting.count(
                row,
                answering,
                ms,
                error=True,
                tokens=0,
                handoffs=len(handoffs),
                escalations=escalations,
            )
            for h in handoffs:
                self._emit(
                    "handoff:failed", {"session_id": row.id, **h.as_dict(), "error": str(exc)}
                )
            if isinstance(exc, TurnFailedError):  # e.g. the tool round limit: already says it
                raise
            raise TurnFailedError(row.id, answering, exc) from exc
        ms = (clock.monotonic() - started) * 1000.0
        tokens = reply.input_tokens + reply.output_tokens
        row.turns = turn
        row.input_tokens += reply.input_tokens
        row.output_tokens += reply.output_tokens
        now = clock.now()
        row.last_activity_at = now
        self._dirty.add(row.id)
        if pools or ticket is not None:
            pools_manager.record_tokens(pools, tokens, ticket=ticket)
        self._accounting.count(
            row,
            answering,
            ms,
            error=False,
            tokens=tokens,
            handoffs=len(handoffs),
            escalations=escalations,
        )
        self._changes.complete_handoffs(row, handoffs)
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

    async def _answer_calls(
        self, row: SessionRow, agent: str, pin: tuple[str, str], reply: Reply, extra: Any
    ) -> Reply:
        """Run the calls `reply` asks for, round after round, until the model answers with a
        message (`runner.runtime.tools`); the reply's usage is the whole turn's."""
        provider = self._provider

        def responder(options: dict[str, Any]) -> Respond:
            async def respond(outputs: Sequence[ToolOutput], previous: str) -> Reply:
                answer: Reply = await call_provider(
                    provider,
                    provider.respond,
                    conversation_id=row.conversation_id,
                    agent_name=pin[0],
                    agent_version=pin[1],
                    text="",
                    tool_outputs=outputs,
                    previous_response_id=previous,
                    **options,
                )
                return answer

            return respond

        # the calls left at the round limit are answered without streaming: the turn fails
        quiet = {k: v for k, v in extra.items() if k != "on_text"}
        configs = self._configs

        def refusal(tool: str) -> str | None:
            return configs.tool_refusal(row, agent, tool)

        result = await self._rounds.answer(
            reply,
            tools=self._tools.for_agent(agent, self._applied.declared.agents.get(agent)),
            respond=responder(extra),
            session_id=row.id,
            agent=agent,
            refusal=refusal,
            closing=responder(quiet) if len(quiet) < len(extra) else None,
        )
        return replace(
            result.reply, input_tokens=result.input_tokens, output_tokens=result.output_tokens
        )

    async def _route(self, live: LiveSession, text: str, turn: int) -> RouteDecision:
        row = live.row
        router = self._routers.for_team(row.target)
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
            preferences=row.config.get("preferences") or row.preferences,  # effective ones
            priority=row.priority,
            workload=self._table.workload,
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
