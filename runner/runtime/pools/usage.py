"""What one resource pool holds right now: session slots, the token window, warnings, waiters.

Role: the state `PoolManager` (`runner.runtime.pools.manager`) keeps per pool and the
analytics (`runner.runtime.pools.figures`) read. The token window is a sliding
`TOKEN_WINDOW_S` of (time, tokens) entries with a running sum.

Invariant: `trim(now)` drops the entries at or before `now - TOKEN_WINDOW_S`, keeping
`window_sum` the sum of what is left; `seconds_until_room` trims first.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field

from runner.spec.models import ResourcePool

__all__ = ["CHARS_PER_TOKEN", "TOKEN_WINDOW_S", "PoolUsage", "estimate_tokens"]

TOKEN_WINDOW_S = 60.0
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text and BPE tokenizers


def estimate_tokens(text: str) -> int:
    """About how many tokens `text` is, before any model sees it: one per `CHARS_PER_TOKEN`
    characters (what a turn's size is checked against a pool's token budget with)."""
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass
class PoolUsage:
    """One pool's spec and what is counted against it in this runtime."""

    spec: ResourcePool
    active: int = 0
    peak: int = 0
    refused: int = 0
    waited: int = 0
    token_refusals: int = 0
    tokens_total: int = 0
    window: deque[tuple[float, int]] = field(default_factory=deque)
    window_sum: int = 0
    crossed: dict[str, bool] = field(default_factory=dict)
    warnings: int = 0
    waiters: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)

    def trim(self, now: float) -> None:
        cutoff = now - TOKEN_WINDOW_S
        window = self.window
        while window and window[0][0] <= cutoff:
            self.window_sum -= window.popleft()[1]

    def seconds_until_room(self, limit: int, estimate: int, now: float) -> float | None:
        """None when the window has room for a turn of about `estimate` tokens under `limit`;
        else the seconds until it will (the oldest entries leave first), infinite when the
        estimate alone is over the limit."""
        self.trim(now)
        if estimate > limit:
            return math.inf
        need = self.window_sum + max(estimate, 1) - limit
        if need <= 0:
            return None
        freed = 0
        at = now
        for t, tokens in self.window:
            freed += tokens
            at = t + TOKEN_WINDOW_S
            if freed >= need:
                break
        return max(0.0, at - now)
