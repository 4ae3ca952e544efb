"""Retries as data: which failures are retried, how long to wait, and a hook before each retry.

Role in the flow: the executor wraps every provider call in `call_with_retry`. Only
`TransientError` (429, 5xx, a dropped connection) is retried; any other `ProviderError` is final.
The wait is exponential backoff with jitter, never shorter than the service's `retry_after`.

Invariant: `before_retry` runs before every retry and may return a result that ends the loop; the
executor uses it to find a version a lost response already created, so a retried
`create_version` never writes a second version. Sleep and randomness are injected.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from runner.providers.base import TransientError

__all__ = ["RetryPolicy", "call_with_retry"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    base_delay: float = 0.1
    max_delay: float = 20.0
    jitter: float = 0.5  # each wait is scaled by a random factor in [1 - jitter, 1]

    def delay(self, retry: int, *, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        backoff *= 1 - self.jitter * rng.random()
        if retry_after is not None:
            return max(backoff, min(float(retry_after), self.max_delay * 3))
        return backoff


def call_with_retry(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    rng: random.Random,
    before_retry: Callable[[], T | None] | None = None,
    on_retry: Callable[[int, TransientError, float], None] | None = None,
) -> T:
    """`call()`, retried on TransientError up to `policy.attempts` times in all;
    `on_retry(retry, error, delay)` is told before each wait (so a user sees it)."""
    retry = 0
    while True:
        try:
            return call()
        except TransientError as exc:
            retry += 1
            if retry >= policy.attempts:
                raise
            delay = policy.delay(retry, retry_after=exc.retry_after, rng=rng)
            if on_retry is not None:
                on_retry(retry, exc, delay)
            sleep(delay)
            if before_retry is not None:
                found = call_with_retry(
                    before_retry, policy=policy, sleep=sleep, rng=rng, on_retry=on_retry
                )
                if found is not None:
                    return found
