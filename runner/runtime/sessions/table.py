"""The sessions this process holds in memory, and the mechanics of every change of their state.

Role: `LiveSessions` is the runtime's session table. Admission (`runner.runtime.sessions.
admission`) adds a session, the turn path changes its counters and current member, and every
state change goes through `set_current` / `transition` / `end` here; `SessionChanges`
(`runner.runtime.sessions.changes`) is what calls them for decisions, expiry and cleanup, and
serves queued handoffs once a change is complete.

Invariants:
  - A live session is never an ended one: `end` drops it from the table, releases its pool
    slots, tells the monitor it closed and updates the ended figures.
  - State changes are written at once (`SessionStore.save_state`; an end through `write_end`,
    which `SessionLeases` makes give the session's lease back in the same statement) and
    announced with `session:state-changed`; turn counters are written behind (`dirty`,
    `flush`).
  - `current_load` counts live sessions per current member (the routers' workload); it moves
    only through `set_current`, which tells the waiting index when a member's load drops.
  - A session of another workspace (or environment) is reported exactly like a missing one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

from runner.runtime.auth import AuthContext
from runner.runtime.context import RuntimeContext
from runner.runtime.errors import SessionNotFoundError, SessionStateError
from runner.runtime.monitoring import PerformanceMonitor, Subject
from runner.runtime.pools import PoolManager
from runner.runtime.sessions.waiting import WaitingSessions, waiting_target
from runner.spec.vocabulary import SessionState
from runner.state.sessions import SessionRow, SessionStore

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

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        store: SessionStore,
        pools: PoolManager,
        monitor: PerformanceMonitor,
        waiting: WaitingSessions,
    ) -> None:
        self._ctx = ctx
        self._env = ctx.env.name
        self._store = store
        self._pools = pools
        self._monitor = monitor
        self.waiting = waiting
        self.live: dict[str, LiveSession] = {}
        self.write_end: Callable[[SessionRow], object] = store.save_state
        self.dirty: set[str] = set()  # sessions whose counters changed since the last flush
        self.current_load: dict[str, int] = {}
        self.created = 0
        self.ended_reasons: dict[str, int] = {}
        self.ended_turns = 0

    # ------------------------------------------------------------ holding sessions

    def restore(self) -> None:
        """Hold every open session of the environment found in the store (at open)."""
        for row in self._store.load_open(self._env):
            self._hold(row, tuple(row.pins))
            if row.current_agent:
                self.current_load[row.current_agent] = (
                    self.current_load.get(row.current_agent, 0) + 1
                )

    def _hold(self, row: SessionRow, agents: tuple[str, ...]) -> LiveSession:
        """Hold a session opened before (at restore, or by another runtime): its pool slots
        are counted without checking limits."""
        live = self.live[row.id] = LiveSession(row=row, agents=agents)
        self._pools.occupy(agents=agents, pools=row.pools, holder=row.id)
        self._monitor.sessions_opened(open_subjects(row, agents))
        if waiting_target(row) is not None:
            self.waiting.track(live)
        return live

    def add(self, row: SessionRow, agents: tuple[str, ...]) -> LiveSession:
        """Hold a session admission just created (its pool slots are taken)."""
        live = self.live[row.id] = LiveSession(row=row, agents=agents)
        self._monitor.sessions_opened(open_subjects(row, agents))
        first = row.current_agent
        if first is not None:
            self.current_load[first] = self.current_load.get(first, 0) + 1
        self.created += 1
        return live

    def visible(self, session_id: str, auth: AuthContext) -> SessionRow:
        """The session's row if `auth` may see it (ended sessions too)."""
        live = self.live.get(session_id)
        row = live.row if live is not None else self._store.load(session_id)
        if row is None or not auth.covers(row.workspace_id) or row.env != self._env:
            raise SessionNotFoundError(session_id)
        return row

    def live_or_raise(self, session_id: str, auth: AuthContext) -> LiveSession:
        """The live session (adopting one another runtime opened); raises for an ended one."""
        row = self.visible(session_id, auth)
        live = self.live.get(session_id)
        if live is None:
            if row.state == "ended":
                raise SessionStateError(session_id, "ended", f"it ended ({row.reason})")
            live = self._hold(row, tuple(row.pins))  # opened by another runtime: adopt it
        return live

    def row(self, session_id: str) -> SessionRow | None:
        """The in-memory row of a live session, else the stored one (None: unknown)."""
        live = self.live.get(session_id)
        if live is not None:
            return live.row
        return self._store.load(session_id)

    def open_rows(self) -> list[SessionRow]:
        """Every open session of the environment, the in-memory row when this runtime has it."""
        rows = {row.id: row for row in self._store.load_open(self._env)}
        for sid, held in self.live.items():
            rows[sid] = held.row
        return [r for r in rows.values() if r.state != "ended"]

    def rows(self) -> Iterator[SessionRow]:
        return (live.row for live in self.live.values())

    def workload(self, agent: str) -> int:
        """Live sessions whose current member is `agent`."""
        return self.current_load.get(agent, 0)

    # ------------------------------------------------------------ changes (mechanics)

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
        if state == "ended":
            self.write_end(row)
        else:
            self._store.save_state(row)
        self.dirty.discard(row.id)
        self._ctx.emit(
            "session:state-changed",
            {"session_id": row.id, "from": old, "to": state, "reason": reason},
        )

    def end(self, live: LiveSession, reason: str) -> None:
        """End a session here; `SessionChanges.end` also serves what its member's freed slot
        may take."""
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
        self._pools.release(agents=live.agents, pools=row.pools, holder=row.id)
        monitor = self._monitor
        monitor.sessions_closed(open_subjects(row, live.agents))
        self.ended_reasons[reason] = self.ended_reasons.get(reason, 0) + 1
        self.ended_turns += row.turns
        # resolution_rate (and active_sessions) alerts of the session's subjects
        monitor.record_outcome(
            session_subjects(row), now, ended=True, resolved=reason == "resolved"
        )
        if ctx.events.has_listeners("lifecycle:session_ended"):
            ctx.emit(
                "lifecycle:session_ended",
                {"session_id": row.id, "reason": reason, "turns": row.turns},
            )

    # ------------------------------------------------------------ other instances' changes

    def adopt_expired(self, now: float) -> int:
        """Hold the sessions due to expire that this instance does not hold (another instance
        opened them, and may have died), so the sweeper ends them under their lease; how many."""
        max_age = self._ctx.config.max_session_duration_s or None
        adopted = 0
        for row in self._store.load_expired(self._env, now=now, max_age=max_age):
            if row.id not in self.live:
                self._hold(row, tuple(row.pins))
                adopted += 1
        return adopted

    def refresh(self, live: LiveSession, fresh: SessionRow | None) -> None:
        """Another instance changed the session since this one wrote it: take the stored row
        (`fresh`) as it is, in place (others hold `live.row`). Ended elsewhere (or gone): drop
        it here without writing anything."""
        if fresh is None or fresh.state == "ended":
            self.forget(live)  # counted with the row as this instance knew it
            if fresh is None:
                live.row.state = "ended"
                return
        else:
            self.set_current(live, fresh.current_agent)
        for f in fields(SessionRow):
            setattr(live.row, f.name, getattr(fresh, f.name))
        if fresh.state != "ended":
            self.waiting.track(live)

    def forget(self, live: LiveSession) -> None:
        """Stop holding a session another instance ended: its slots and figures here go, the
        store is not written."""
        row = live.row
        if self.live.pop(row.id, None) is None:
            return
        self.dirty.discard(row.id)
        self.waiting.forget(row.id)
        current = row.current_agent
        load = self.current_load
        if current is not None and load.get(current, 0) > 0:
            load[current] -= 1
            if not load[current]:
                del load[current]
        # its places: released by its ender; not to be extended here any more
        self._pools.release(agents=live.agents, pools=row.pools, holder=row.id)
        self._monitor.sessions_closed(open_subjects(row, live.agents))

    def using(self, agent: str) -> list[LiveSession]:
        """The live sessions pinned to `agent`."""
        return [live for live in self.live.values() if agent in live.row.pins]

    def expiry(self, row: SessionRow, now: float) -> str | None:
        """Why the session ends at `now` (`idle_timeout`, `max_duration`), None if it does not."""
        if row.state == "ended":
            return None
        idle = row.idle_timeout
        if idle and now - row.last_activity_at >= idle:
            return "idle_timeout"
        max_age = self._ctx.config.max_session_duration_s
        if max_age and now - row.created_at >= max_age:
            return "max_duration"
        return None

    # ------------------------------------------------------------ write-behind

    def flush(self) -> None:
        """Write turn counters of sessions changed since the last flush (write-behind)."""
        dirty = self.dirty
        if not dirty:
            return
        rows = [live.row for sid in dirty if (live := self.live.get(sid)) is not None]
        dirty.clear()
        self._store.save_counters(rows)
