"""What a turn costs and counts: its price, the session's ledger, the turn log and the figures.

Role: `Turns` (the turn path) hands every turn here once it is over. An answered turn is
charged at its model's price (`CostMeter`), written to the session's ledger (quality figures)
and to the turn log (`TurnRecorder`, what `runner report` reads), and counted by the
performance monitor against its subjects (the agent, the agent's pools, the session's team);
a failed turn goes to the turn log and the monitor as an error.

Invariants:
  - Figures only: nothing here changes a session or decides anything about a turn.
  - With the monitor disabled (no Alert reads the figures) it pays nothing per turn.
"""

from __future__ import annotations

from dataclasses import replace

from runner.runtime.clock import Clock
from runner.runtime.monitoring import CostMeter, PerformanceMonitor, SessionLedger, Subject
from runner.runtime.pools import PoolManager
from runner.runtime.sessions.handles import TurnReply
from runner.runtime.sessions.turn_recorder import TurnRecorder
from runner.state.sessions import SessionRow

__all__ = ["TurnAccounting"]


class TurnAccounting:
    """Price, ledger, turn log and monitor figures of the turns of one runtime."""

    def __init__(
        self,
        *,
        clock: Clock,
        pools: PoolManager,
        monitor: PerformanceMonitor,
        costs: CostMeter,
        ledger: SessionLedger,
        recorder: TurnRecorder,
    ) -> None:
        self._clock = clock
        self._pools = pools
        self._monitor = monitor
        self._costs = costs
        self._ledger = ledger
        self._recorder = recorder

    def refuse_if_spent(self, row: SessionRow) -> None:
        """Raise when a budget that refuses is spent: before anything is sent or admitted."""
        self._costs.refusal(pools=row.pools, workspace=row.workspace_id)

    def charge(self, row: SessionRow, reply: TurnReply) -> TurnReply:
        """Charge an answered turn's tokens at its model's price (`reply.cost`) and write the
        turn's figures in the session's ledger and the turn log."""
        if reply.agent is None:
            self._ledger.record(row.id, ms=None, handoffs=len(reply.handoffs), cost=None)
            return reply
        team = row.target if row.kind == "team" else None
        charged = self._costs.charge(
            agent=reply.agent,
            team=team,
            pools=self._pools.pools_for(reply.agent),
            workspace=row.workspace_id,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
        )
        self._ledger.record(
            row.id, ms=reply.response_time_ms, handoffs=len(reply.handoffs), cost=charged.amount
        )
        self._recorder.record(
            row.id,
            at=self._clock.now(),
            agent=reply.agent,
            team=team,
            ms=reply.response_time_ms,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cost=charged.amount,
        )
        if charged.amount is None:
            return reply
        if charged.amount and self._monitor.enabled:  # cost alerts
            self._monitor.record_outcome(
                self.subjects(row, reply.agent), self._clock.now(), cost=charged.amount
            )
        return replace(reply, cost=charged.amount)

    def failed(self, row: SessionRow, agent: str | None) -> None:
        """A turn that failed, in the turn log (its figures were counted by `count`)."""
        self._recorder.record(
            row.id,
            at=self._clock.now(),
            agent=agent,
            team=row.target if row.kind == "team" else None,
            ms=0.0,
            error=True,
        )

    def count(
        self,
        row: SessionRow,
        agent: str | None,
        ms: float,
        *,
        error: bool,
        tokens: int,
        handoffs: int,
        escalations: int,
    ) -> None:
        """A turn's figures for the performance monitor (alerts, insights)."""
        monitor = self._monitor
        if not monitor.enabled:
            return
        monitor.record_turn(
            self.subjects(row, agent),
            now=self._clock.now(),
            ms=ms,
            error=error,
            tokens=tokens,
            handoffs=handoffs,
            escalations=escalations,
        )

    def subjects(self, row: SessionRow, agent: str | None) -> list[Subject]:
        """What a turn of `agent` counts against: the agent, its pools, the session's team."""
        subjects: list[Subject] = []
        if agent is not None:
            subjects.append(("agent", agent))
            subjects.extend(("pool", p) for p in self._pools.pools_for(agent))
        if row.kind == "team":
            subjects.append(("team", row.target))
        return subjects
