"""The sessions this process holds in memory, and every change of their state.

Role: `LiveSessions` is the runtime's session table. Admission (`runner.runtime.admission`)
adds a session, the turn path (`runner.runtime.turns`) changes its counters and current member,
and everything that changes a session's state goes through `transition` / `end` here: pause,
resume, waiting for a human, idle expiry (`sweep`), agent cleanup, a router's decision.

Invariants:
  - A live session is never an ended one: `end` drops it from the table, releases its pool
    slots and updates the ended figures.
  - State changes are written at once (`SessionStore.save_state`) and announced with
    `session:state-changed`; turn counters are written behind (`dirty`, `flush`).
  - `current_load` counts live sessions per current member (the routers' workload); it moves
    only through `set_current`.
  - A session of another workspace (or environment) is reported exactly like a missing one.
  - `waiting` indexes the sessions with a queued handoff (`runner.runtime.waiting`); a member
    whose workload drops (`set_current`, `end`) makes what waits for it due, served once the
    change is complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

from runner.runtime.context import RuntimeContext
from runner.runtime.errors import SessionNotFoundError, SessionStateError
from runner.runtime.monitoring import Subject
from runner.runtime.session import AuthContext
from runner.runtime.teams import primary_member
from runner.runtime.waiting import WaitingHandoffs, waiting_target
from runner.spec.models import Team
from runner.spec.vocabulary import SessionState
from runner.state.sessions import SessionRow

__all__ = ["LiveSession", "LiveSessions", "open_subjects", "session_subjects"]


@dataclass(slots=True)
class LiveSession:
    """A session this process holds in memory (never an ended one)."""

    row: SessionRow
    agents: tuple[str, ...]  # agents whose limits the session counts against
    lock: asyncio.Lock | None = None


def open_subjects(row: SessionRow, agents: tuple[str, ...]) -> list[Subject]:
    """What an open session counts against for `active_sessions`: its pools, its team, and each
    agent it holds (a team session: every member)."""
    subjects: list[Subject] = [("pool", p) for p in row.pools]
    if row.kind == "team":
        subjects.append(("team", row.target))
    subjects.extend(("agent", a) for a in agents)
    return subjects


def session_subjects(row: SessionRow) -> list[Subject]:
    """What a session counts against in monitoring: its pools and its team or agent."""
    subjects: list[Subject] = [("pool", p) for p in row.pools]
    subjects.append(("team", row.target) if row.kind == "team" else ("agent", row.target))
    return subjects


class LiveSessions:
    """The session table of one runtime (see the module docstring)."""

    def __init__(self, ctx: RuntimeContext) -> None:
        self._ctx = ctx
        self.live: dict[str, LiveSession] = {}
        self.dirty: set[str] = set()  # sessions whose counters changed since the last flush
        self.current_load: dict[str, int] = {}
        self.created = 0
        self.ended_reasons: dict[str, int] = {}
        self.ended_turns = 0
        self.waiting = WaitingHandoffs()

    # ------------------------------------------------------------ holding sessions

    def restore(self) -> None:
        """Hold every open session of the environment found in the store (at open)."""
        ctx = self._ctx
        for row in ctx.store.load_open(ctx.env.name):
            agents = tuple(row.pins)
            live = self.live[row.id] = LiveSession(row=row, agents=agents)
            ctx.pools.occupy(agents=agents, pools=row.pools)
            ctx.monitor.sessions_opened(open_subjects(row, agents))
            if waiting_target(row) is not None:
                self.waiting.track(live)
            if row.current_agent:
                self.current_load[row.current_agent] = (
                    self.current_load.get(row.current_agent, 0) + 1
                )

    def add(self, row: SessionRow, agents: tuple[str, ...]) -> LiveSession:
        """Hold a session admission just created (its pool slots are taken)."""
        live = self.live[row.id] = LiveSession(row=row, agents=agents)
        self._ctx.monitor.sessions_opened(open_subjects(row, agents))
        first = row.current_agent
        if first is not None:
            self.current_load[first] = self.current_load.get(first, 0) + 1
        self.created += 1
        return live

    def visible(self, session_id: str, ctx: AuthContext) -> SessionRow:
        """The session's row if `ctx` may see it (ended sessions too)."""
        live = self.live.get(session_id)
        row = live.row if live is not None else self._ctx.store.load(session_id)
        if row is None or row.workspace_id != ctx.workspace_id or row.env != self._ctx.env.name:
            raise SessionNotFoundError(session_id)
        return row

    def live_or_raise(self, session_id: str, ctx: AuthContext) -> LiveSession:
        """The live session (adopting one another runtime opened); raises for an ended one."""
        row = self.visible(session_id, ctx)
        live = self.live.get(session_id)
        if live is None:
            if row.state == "ended":
                raise SessionStateError(session_id, "ended", f"it ended ({row.reason})")
            # Opened by another runtime after this one started: adopt it.
            live = self.live[session_id] = LiveSession(row=row, agents=tuple(row.pins))
            self._ctx.pools.occupy(agents=live.agents, pools=row.pools)
            self._ctx.monitor.sessions_opened(open_subjects(row, live.agents))
            if waiting_target(row) is not None:
                self.waiting.track(live)
        return live

    def row(self, session_id: str) -> SessionRow | None:
        """The in-memory row of a live session, else the stored one (None: unknown)."""
        live = self.live.get(session_id)
        if live is not None:
            return live.row
        return self._ctx.store.load(session_id)

    def open_rows(self) -> list[SessionRow]:
        """Every open session of the environment, the in-memory row when this runtime has it."""
        ctx = self._ctx
        rows = {row.id: row for row in ctx.store.load_open(ctx.env.name)}
        for sid, held in self.live.items():
            rows[sid] = held.row
        return [r for r in rows.values() if r.state != "ended"]

    def rows(self) -> Iterator[SessionRow]:
        return (live.row for live in self.live.values())

    # ------------------------------------------------------------ figures

    def workload(self, agent: str) -> int:
        """Live sessions whose current member is `agent`."""
        return self.current_load.get(agent, 0)

    # ------------------------------------------------------------ changes

    def set_current(self, live: LiveSession, agent: str | None) -> None:
        row = live.row
        old = row.current_agent
        if old == agent:
            return
        load = self.current_load
        if old is not None:
            left = load.get(old, 0) - 1
            if left > 0:
                load[old] = left
            else:
                load.pop(old, None)
            self.waiting.freed(old)
        if agent is not None:
            load[agent] = load.get(agent, 0) + 1
        row.current_agent = agent

    def transition(self, live: LiveSession, state: SessionState, *, reason: str | None) -> None:
        row = live.row
        old = row.state
        if old == state:
            return
        row.state = state
        if reason is not None:
            row.reason = reason
        self._ctx.store.save_state(row)
        self.dirty.discard(row.id)
        self._ctx.emit(
            "session:state-changed",
            {"session_id": row.id, "from": old, "to": state, "reason": reason},
        )

    def end(self, live: LiveSession, reason: str) -> None:
        row = live.row
        if row.state == "ended":
            return
        ctx = self._ctx
        now = ctx.clock.now()
        row.ended_at = now
        waiting = self.waiting
        if waiting.key_of:
            waiting.forget(row.id)
        self.transition(live, "ended", reason=reason)
        self.live.pop(row.id, None)
        self.dirty.discard(row.id)
        self.set_current(live, None)  # the stored row keeps the last member
        ctx.pools.release(agents=live.agents, pools=row.pools)
        ctx.monitor.sessions_closed(open_subjects(row, live.agents))
        self.ended_reasons[reason] = self.ended_reasons.get(reason, 0) + 1
        self.ended_turns += row.turns
        ctx.monitor.evaluate_subjects(session_subjects(row), now)
        if ctx.events.has_listeners("lifecycle:session_ended"):
            ctx.emit(
                "lifecycle:session_ended",
                {"session_id": row.id, "reason": reason, "turns": row.turns},
            )
        if waiting.pending:
            waiting.settle()  # its member's slot is free: serve who waits for it

    def end_using(self, agent: str, reason: str) -> int:
        """End every live session pinned to `agent`; how many ended."""
        ended = 0
        for live in list(self.live.values()):
            if agent in live.row.pins:
                self.end(live, reason)
                ended += 1
        return ended

    def pause(self, session_id: str, ctx: AuthContext) -> None:
        live = self.live_or_raise(session_id, ctx)
        if live.row.state not in ("active", "paused"):
            raise SessionStateError(session_id, live.row.state, "only an active session pauses")
        self.transition(live, "paused", reason=None)

    def resume(self, session_id: str, ctx: AuthContext, *, team: Team | None) -> None:
        """Active again; a session a human had goes back to `team`'s primary (or its agent)."""
        live = self.live_or_raise(session_id, ctx)
        row = live.row
        if row.state == "active":
            return
        if row.state == "ended":
            raise SessionStateError(session_id, "ended", "an ended session cannot resume")
        if row.current_agent is None:  # a human had it: the team's primary takes it back
            self.set_current(live, primary_member(team) if team else row.target)
        self.transition(live, "active", reason=None)
        live.row.last_activity_at = self._ctx.clock.now()

    def await_human(self, session_id: str, ctx: AuthContext, *, reason: str | None) -> None:
        live = self.live_or_raise(session_id, ctx)
        if live.row.state == "ended":
            raise SessionStateError(session_id, "ended", "it cannot wait for a human")
        self.transition(live, "awaiting_human", reason=reason)

    def end_session(self, session_id: str, ctx: AuthContext, *, reason: str) -> None:
        """End a session (nothing to do for an ended one)."""
        row = self.visible(session_id, ctx)
        if row.state == "ended":
            return
        self.end(self.live_or_raise(session_id, ctx), reason)

    # ------------------------------------------------------------ write-behind, expiry

    def flush(self) -> None:
        """Write turn counters of sessions changed since the last flush (write-behind)."""
        dirty = self.dirty
        if not dirty:
            return
        rows = [live.row for sid in dirty if (live := self.live.get(sid)) is not None]
        dirty.clear()
        self._ctx.store.save_counters(rows)

    def expire(self, now: float) -> list[str]:
        """End idle (and too old) sessions at `now`; the ids ended."""
        ctx = self._ctx
        ended: list[str] = []
        max_age = ctx.config.max_session_duration_s
        for live in list(self.live.values()):
            row = live.row
            if row.state == "ended":
                continue
            idle = row.idle_timeout
            if idle and now - row.last_activity_at >= idle:
                self.end(live, "idle_timeout")
                ended.append(row.id)
            elif max_age and now - row.created_at >= max_age:
                self.end(live, "max_duration")
                ended.append(row.id)
        return ended
