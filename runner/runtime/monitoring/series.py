"""Figures of one subject (an agent, a team or a pool): totals, sliding windows, percentiles.

Role: the monitor (`runner.runtime.monitoring.monitor`) keeps one `Series` per subject and adds
each turn to it; alerts and reports read `Series.figures(window, now)`.

Invariant: memory per subject is bounded: figures are kept in one-second buckets (one deque of
buckets per distinct window length, with running sums, so a window query costs O(1)
amortised) plus a capped reservoir (`RESERVOIR`) of recent response times for percentiles.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TypedDict

__all__ = [
    "DEFAULT_WINDOW_S",
    "RESERVOIR",
    "Bucket",
    "Series",
    "Window",
    "WindowFigures",
    "quantile",
]

DEFAULT_WINDOW_S = 300.0
RESERVOIR = 2048


class Bucket:
    """The figures of one second."""

    __slots__ = (
        "cost",
        "ended",
        "errors",
        "escalations",
        "handoffs",
        "ms",
        "resolved",
        "second",
        "tokens",
        "turns",
    )

    def __init__(self, second: int) -> None:
        self.second = second
        self.turns = 0
        self.errors = 0
        self.tokens = 0
        self.ms = 0.0
        self.handoffs = 0
        self.escalations = 0
        self.cost = 0.0
        self.ended = 0
        self.resolved = 0


class Window:
    """Running sums over the buckets of the last `seconds`."""

    __slots__ = (
        "buckets",
        "cost",
        "ended",
        "errors",
        "escalations",
        "handoffs",
        "ms",
        "resolved",
        "seconds",
        "tokens",
        "turns",
    )

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.buckets: deque[Bucket] = deque()
        self.turns = 0
        self.errors = 0
        self.tokens = 0
        self.ms = 0.0
        self.handoffs = 0
        self.escalations = 0
        self.cost = 0.0
        self.ended = 0
        self.resolved = 0

    def evict(self, now: float) -> None:
        cutoff = now - self.seconds
        buckets = self.buckets
        while buckets and buckets[0].second + 1 <= cutoff:
            b = buckets.popleft()
            self.turns -= b.turns
            self.errors -= b.errors
            self.tokens -= b.tokens
            self.ms -= b.ms
            self.handoffs -= b.handoffs
            self.escalations -= b.escalations
            self.cost -= b.cost
            self.ended -= b.ended
            self.resolved -= b.resolved


class WindowFigures(TypedDict):
    window_s: float
    turns: int
    errors: int
    error_rate: float | None
    average_response_time: float | None
    p95_response_time: float | None
    tokens: int
    tokens_per_minute: float
    handoffs: int
    escalations: int
    cost: float
    sessions_ended: int
    resolution_rate: float | None


@dataclass
class Series:
    """Figures of one subject: totals, windows and a reservoir of recent response times."""

    turns: int = 0
    errors: int = 0
    tokens: int = 0
    ms_total: float = 0.0
    handoffs: int = 0
    escalations: int = 0
    sessions: int = 0
    cost: float = 0.0
    ended: int = 0
    resolved: int = 0
    windows: dict[float, Window] = field(default_factory=dict)
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RESERVOIR))
    _current: Bucket | None = None

    def window(self, seconds: float) -> Window:
        w = self.windows.get(seconds)
        if w is None:
            w = self.windows[seconds] = Window(seconds)
        return w

    def add(
        self, now: float, ms: float, *, error: bool, tokens: int, handoffs: int, escalations: int
    ) -> None:
        self.turns += 1
        self.errors += error
        self.tokens += tokens
        self.ms_total += ms
        self.handoffs += handoffs
        self.escalations += escalations
        self.recent.append((now, ms))
        second = int(now)
        current = self._current
        if current is None or current.second != second:
            current = self._current = Bucket(second)
            for w in self.windows.values():
                w.buckets.append(current)
        current.turns += 1
        current.errors += error
        current.tokens += tokens
        current.ms += ms
        current.handoffs += handoffs
        current.escalations += escalations
        for w in self.windows.values():
            if not w.buckets or w.buckets[-1] is not current:
                w.buckets.append(current)
            w.turns += 1
            w.errors += error
            w.tokens += tokens
            w.ms += ms
            w.handoffs += handoffs
            w.escalations += escalations

    def _bucket(self, now: float) -> Bucket:
        second = int(now)
        current = self._current
        if current is None or current.second != second:
            current = self._current = Bucket(second)
            for w in self.windows.values():
                w.buckets.append(current)
        return current

    def note(self, now: float, *, cost: float = 0.0, ended: int = 0, resolved: int = 0) -> None:
        """What is not a turn: money spent, sessions that ended (and how many resolved)."""
        self.cost += cost
        self.ended += ended
        self.resolved += resolved
        current = self._bucket(now)
        current.cost += cost
        current.ended += ended
        current.resolved += resolved
        for w in self.windows.values():
            if not w.buckets or w.buckets[-1] is not current:
                w.buckets.append(current)
            w.cost += cost
            w.ended += ended
            w.resolved += resolved

    def figures(self, seconds: float, now: float, *, percentile: bool = True) -> WindowFigures:
        w = self.window(seconds)
        w.evict(now)
        turns = w.turns
        p95 = None
        if percentile and turns:
            cutoff = now - seconds
            times = sorted(ms for t, ms in self.recent if t > cutoff)
            p95 = quantile(times, 0.95)
        return {
            "window_s": seconds,
            "turns": turns,
            "errors": w.errors,
            "error_rate": (w.errors / turns) if turns else None,
            "average_response_time": (w.ms / turns) if turns else None,
            "p95_response_time": p95,
            "tokens": w.tokens,
            "tokens_per_minute": w.tokens / (seconds / 60.0),
            "handoffs": w.handoffs,
            "escalations": w.escalations,
            "cost": w.cost,
            "sessions_ended": w.ended,
            "resolution_rate": (w.resolved / w.ended) if w.ended else None,
        }


def quantile(sorted_values: list[float], q: float) -> float | None:
    """The `q` quantile (nearest rank) of sorted values; None for none."""
    if not sorted_values:
        return None
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[index]
