"""The runtime's event bus: `lc.on(type, callback)` and the emitters inside the runtime.

Event types (seed 000 names): `lifecycle:session_created`, `lifecycle:session_ended`,
`session:state-changed`, `handoff:initiated`, `handoff:completed`, `escalation:*`,
`performance:alert`, `performance:alert-cleared`, `resource:warning`, `agent:created`,
`agent:cleaned-up`, `channel:delivery-failed`.

Subscriptions: an exact type, a prefix pattern ending in `*` (`handoff:*`), or `"*"` for all.

Invariants:
  - Every event is stamped with the runtime's clock (`at`), unless the emitter gives the time.
  - A callback error never breaks the emitter: it is logged and counted (`errors`).
  - Sync callbacks run inline, in subscription order; async callbacks are scheduled as tasks on
    the running loop (or run to completion when no loop runs) and tracked until done, so
    `drain()` can wait for them.
  - Emitting with no subscriber costs one dict lookup (with no relay).
  - Across instances (`runner.runtime.events_redis`): with a relay, every event emitted here is
    also handed to it (built even with no local subscriber), and events of other instances come
    back through `deliver`, marked with their `origin`, to the local subscribers only: never
    relayed again, so each subscriber receives each event once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.runtime.clock import Clock

__all__ = ["Callback", "Event", "EventBus"]

log = logging.getLogger("runner.runtime.events")


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its type (`handoff:completed`), its data and when it happened."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: float = 0.0
    origin: str | None = None  # the instance that produced it, when not this one


Callback = Callable[[Event], Awaitable[None] | None]


class EventBus:
    """Subscriptions and delivery of the runtime's events (see the module docstring)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._exact: dict[str, list[Callback]] = {}
        self._patterns: list[tuple[str, Callback]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.errors = 0
        self.emitted = 0
        self.relay: Callable[[Event], None] | None = None
        self._local_only: set[int] = set()

    def on(
        self, event_type: str, callback: Callback, *, remote: bool = False
    ) -> Callable[[], None]:
        """Subscribe; returns a function that unsubscribes. `remote`: also receive the events
        other instances produced (`lc.on` does; the runtime's own parts act on their own
        instance's events only, or two instances would both act on one event)."""
        if not remote:
            self._local_only.add(id(callback))
        if event_type.endswith("*"):
            entry = (event_type[:-1], callback)
            self._patterns.append(entry)

            def off_pattern() -> None:
                if entry in self._patterns:
                    self._patterns.remove(entry)
                    if not remote:
                        self._local_only.discard(id(callback))

            return off_pattern
        self._exact.setdefault(event_type, []).append(callback)

        def off() -> None:
            callbacks = self._exact.get(event_type, [])
            if callback in callbacks:
                callbacks.remove(callback)
                if not remote:
                    self._local_only.discard(id(callback))

        return off

    def has_listeners(self, event_type: str) -> bool:
        if self.relay is not None or self._exact.get(event_type):
            return True
        return any(event_type.startswith(prefix) for prefix, _ in self._patterns)

    def emit(
        self, event_type: str, data: Mapping[str, Any], *, at: float | None = None
    ) -> Event | None:
        """Deliver an event to its subscribers, stamped `at` (default: the clock's now); None
        (and nothing built) when there are none."""
        self.emitted += 1
        exact = self._exact.get(event_type)
        matched = [cb for prefix, cb in self._patterns if event_type.startswith(prefix)]
        relay = self.relay
        if not exact and not matched and relay is None:
            return None
        event = Event(event_type, data, self._clock.now() if at is None else at)
        for callback in [*(exact or ()), *matched]:
            self._call(callback, event)
        if relay is not None:
            relay(event)
        return event

    def wants_remote(self, event_type: str) -> bool:
        """Whether a subscriber that takes other instances' events would receive this type."""
        local_only = self._local_only
        for callback in self._exact.get(event_type, ()):
            if id(callback) not in local_only:
                return True
        return any(
            event_type.startswith(prefix) and id(cb) not in local_only
            for prefix, cb in self._patterns
        )

    def deliver(self, event: Event) -> None:
        """An event another instance produced: to the local subscribers, not relayed."""
        exact = self._exact.get(event.type)
        matched = [cb for prefix, cb in self._patterns if event.type.startswith(prefix)]
        local_only = self._local_only
        for callback in [*(exact or ()), *matched]:
            if id(callback) not in local_only:
                self._call(callback, event)

    def _call(self, callback: Callback, event: Event) -> None:
        try:
            result = callback(event)
        except Exception:
            self.errors += 1
            log.exception("event callback for %s failed", event.type)
            return
        if inspect.isawaitable(result):
            self._schedule(result, event)

    def _schedule(self, awaitable: Awaitable[None], event: Event) -> None:
        async def run() -> None:
            try:
                await awaitable
            except Exception:
                self.errors += 1
                log.exception("async event callback for %s failed", event.type)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(run())
            return
        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every async callback scheduled so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
