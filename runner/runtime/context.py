"""The parts of one environment's runtime that its collaborators share.

Role: `Lifecycle` (the facade) builds one `RuntimeContext` and hands it to each collaborator
(`applied`, `agents`, `live`, `admission`, `turns`, `status`) and, through its public
accessors, to the operators. It replaces reaching into the facade's private attributes: a
collaborator reads what it needs here, at call time.

Invariants:
  - One context per `Lifecycle`, passed explicitly (never a module-level "current" context).
  - Everything is fixed for the runtime's life, so the turn path may keep local references to
    the clock, pools, monitor and provider.
  - Events are stamped with the injected clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.providers.base import Provider
from runner.runtime.clock import Clock
from runner.runtime.config import RuntimeConfig
from runner.runtime.events import EventBus
from runner.runtime.monitoring import Notifier, PerformanceMonitor
from runner.runtime.pools import PoolManager
from runner.spec.models import Environment
from runner.state.base import Registry
from runner.state.sessions_sqlite import SqliteSessionStore

__all__ = ["RuntimeContext"]


class RuntimeContext:
    """Environment, provider, stores, clock, configuration and the runtime's shared services."""

    __slots__ = (
        "clock",
        "config",
        "env",
        "environ",
        "events",
        "monitor",
        "notifier",
        "pools",
        "provider",
        "registry",
        "store",
    )

    def __init__(
        self,
        *,
        env: Environment,
        provider: Provider,
        registry: Registry,
        store: SqliteSessionStore,
        clock: Clock,
        environ: Mapping[str, str],
        config: RuntimeConfig,
        events: EventBus,
        pools: PoolManager,
        monitor: PerformanceMonitor,
        notifier: Notifier,
    ) -> None:
        self.env = env
        self.provider = provider
        self.registry = registry
        self.store = store
        self.clock = clock
        self.environ = environ
        self.config = config
        self.events = events
        self.pools = pools
        self.monitor = monitor
        self.notifier = notifier

    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        """Publish an event stamped with the runtime's clock."""
        self.events.emit(event_type, data)
