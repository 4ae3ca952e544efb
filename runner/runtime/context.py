"""What every part of one environment's runtime shares: the environment, clock, settings, events.

Role: a neutral module of the runtime. The composition root (`runner.runtime.assembly`) builds
one `RuntimeContext` per runtime and gives it to the parts that stamp times, read settings or
emit events; everything else a part needs (provider, stores, pools, monitor, ...) it is given
by name when it is built.

Invariants:
  - One context per runtime, passed explicitly (never a module-level "current" context).
  - Everything in it is fixed for the runtime's life, so the turn path may keep local
    references.
  - Events are stamped with the injected clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.runtime.clock import Clock
from runner.runtime.config import RuntimeConfig
from runner.runtime.events import EventBus
from runner.spec.models import Environment

__all__ = ["RuntimeContext"]


class RuntimeContext:
    """The environment, clock, configuration and event bus of one runtime."""

    __slots__ = ("clock", "config", "env", "events")

    def __init__(
        self, *, env: Environment, clock: Clock, config: RuntimeConfig, events: EventBus
    ) -> None:
        self.env = env
        self.clock = clock
        self.config = config
        self.events = events

    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        """Publish an event stamped with the runtime's clock."""
        self.events.emit(event_type, data)
