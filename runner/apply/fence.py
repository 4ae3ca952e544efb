"""What every op of an apply runs with (`OpContext`), and the write fence its remote writes pass.

Role in the flow: `executor.apply_plan` / `ensure_agent` create one `OpContext` per apply
(`OpContext.create`); every op interpreter (`ops_run`) sends its remote writes (create_version,
delete, delete_version) through `OpContext.send_write` and its provider calls through
`OpContext.retry`, and records its outcome in `OpContext.registry`.

Invariants:
  - A remote write is announced in the lock row (`WriteFence.record_write_started`) before it is
    sent and closed (`record_write_finished`) only when its answer arrives; after a
    TransientError it stays open, so whoever takes a dead apply's lock over waits until the write
    can no longer land (`request_timeout` after it was sent) before planning.
  - No fence when the request timeout is 0 (an in-process provider: its writes are atomic) or the
    registry does not implement `WriteFence` (e.g. a wrapping view).
  - `request_timeout`: 0 in-process, else the provider's declared `request_timeout`, else
    `DEFAULT_REQUEST_TIMEOUT`.
  - Each retry draws its own `random.Random` from the apply's rng under a lock (thread-safe).
"""

from __future__ import annotations

import contextvars
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from runner.apply.retry import RetryPolicy, call_with_retry
from runner.providers.base import Provider, ProviderError, TransientError
from runner.state.base import Registry

__all__ = [
    "CURRENT_ADDRESS",
    "DEFAULT_REQUEST_TIMEOUT",
    "OpContext",
    "RetryNotice",
    "WriteFence",
    "compute_request_timeout",
]

# How long a remote write may take to land: FoundryProvider's default read timeout.
DEFAULT_REQUEST_TIMEOUT = 60.0


@runtime_checkable
class WriteFence(Protocol):
    """A registry that records, in the lock row it holds, the remote writes in flight (see
    `runner.state.sqlite`). Registries without it (e.g. a wrapping view) get no fence."""

    def record_write_started(self, env: str, *, request_timeout: float) -> None: ...

    def record_write_finished(self, env: str) -> None: ...


def compute_request_timeout(provider: Provider) -> float:
    """How long after it was sent a write of `provider` may still land: 0 in-process, else the
    provider's `request_timeout` when it declares one, else `DEFAULT_REQUEST_TIMEOUT`."""
    if not provider.remote:
        return 0.0
    declared = getattr(provider, "request_timeout", None)
    if isinstance(declared, int | float) and not isinstance(declared, bool):
        return float(declared)
    return DEFAULT_REQUEST_TIMEOUT


CURRENT_ADDRESS: contextvars.ContextVar[str] = contextvars.ContextVar(
    "runner_op_address", default="Foundry"
)
"""The address of the op a worker thread is running (`ops_run.run_op` sets it), for notices."""


@dataclass(frozen=True)
class RetryNotice:
    """A retry about to wait: `retrying agent.x in 2.0 s (2/5): 503 ...` (`str()`)."""

    address: str
    attempt: int
    attempts: int
    delay: float
    error: TransientError

    def __str__(self) -> str:
        return (
            f"retrying {self.address} in {self.delay:.1f} s ({self.attempt}/{self.attempts}): "
            f"{self.error}"
        )


@dataclass
class OpContext:
    """One apply's provider, registry, environment and id, its retry policy and its fence."""

    provider: Provider
    registry: Registry
    env: str
    apply_id: str
    policy: RetryPolicy
    sleep: Callable[[float], None]
    rng: random.Random
    request_timeout: float = 0.0
    fence: WriteFence | None = None
    rng_lock: threading.Lock = field(default_factory=threading.Lock)
    on_retry: Callable[[RetryNotice], None] | None = None

    @classmethod
    def create(
        cls,
        *,
        provider: Provider,
        registry: Registry,
        env: str,
        apply_id: str,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        rng: random.Random,
        request_timeout: float | None,
    ) -> OpContext:
        """The context of one apply; `request_timeout` None: `compute_request_timeout`. The
        registry is the fence when it implements `WriteFence`."""
        return cls(
            provider=provider,
            registry=registry,
            env=env,
            apply_id=apply_id,
            policy=policy,
            sleep=sleep,
            rng=rng,
            request_timeout=(
                compute_request_timeout(provider) if request_timeout is None else request_timeout
            ),
            fence=registry if isinstance(registry, WriteFence) else None,
        )

    def retry(self, call: Callable[[], Any], **kwargs: Any) -> Any:
        """`call()` with the apply's retry policy (its own random stream, thread-safe)."""
        with self.rng_lock:
            rng = random.Random(self.rng.random())
        notice = self.on_retry
        if notice is not None and "on_retry" not in kwargs:
            address = CURRENT_ADDRESS.get()
            attempts = self.policy.attempts

            def told(retry: int, exc: TransientError, delay: float) -> None:
                assert notice is not None
                notice(RetryNotice(address, retry + 1, attempts, delay, exc))

            kwargs["on_retry"] = told
        return call_with_retry(call, policy=self.policy, sleep=self.sleep, rng=rng, **kwargs)

    def send_write(self, call: Callable[[], Any]) -> Any:
        """`call()` (one remote write), announced in the lock row first (module docstring).

        Only an answer closes it: after a TransientError (a timeout, a dropped connection) the
        write may still land, so it stays open and a takeover waits for it."""
        fence = self.fence if self.request_timeout > 0 else None
        if fence is None:
            return call()
        fence.record_write_started(self.env, request_timeout=self.request_timeout)
        try:
            result = call()
        except TransientError:
            raise
        except ProviderError:
            fence.record_write_finished(self.env)
            raise
        fence.record_write_finished(self.env)
        return result
