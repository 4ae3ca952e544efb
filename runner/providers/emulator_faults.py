"""The emulator's injected faults and request statistics.

Role in the flow: `FaultConfig` is what `serve_emulator` and `EmulatorHandle.configure` set;
`Emulator.draw` counts each request into `RequestStats` and decides its fault; the HTTP handler
answers an injected failure with `injected_error`.

Invariants: `FaultConfig.check` rejects rates outside [0, 1], negative delays and statuses other
than 429/500/502/503/504 before a config is used. An injected 429 carries `Retry-After` (whole
seconds, rounded up) and `retry-after-ms`; other statuses carry Foundry's error codes.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from runner.providers.emulator_json import HttpError

__all__ = ["FaultConfig", "LostResponseMode", "RequestStats", "injected_error"]

LostResponseMode = Literal["503", "drop"]


@dataclass
class FaultConfig:
    """What the emulator injects; changeable while it runs (`EmulatorHandle.configure`)."""

    latency_ms: float = 0.0
    fail_rate: float = 0.0
    lost_response_rate: float = 0.0
    fail_statuses: tuple[int, ...] = (429, 503)
    retry_after_ms: int = 0
    lost_response_mode: LostResponseMode = "503"

    def check(self) -> None:
        for label, rate in (
            ("fail_rate", self.fail_rate),
            ("lost_response_rate", self.lost_response_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{label} must be between 0 and 1, not {rate}")
        if self.latency_ms < 0 or self.retry_after_ms < 0:
            raise ValueError("latency_ms and retry_after_ms must not be negative")
        if not self.fail_statuses or any(
            s not in (429, 500, 502, 503, 504) for s in self.fail_statuses
        ):
            raise ValueError("fail_statuses must be among 429, 500, 502, 503, 504")


@dataclass
class RequestStats:
    """What the emulator counted since it started (or since its stats were reset)."""

    by_method: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    writes: int = 0
    injected_failures: int = 0
    lost_responses: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.reads + self.writes,
            "reads": self.reads,
            "writes": self.writes,
            "by_method": dict(sorted(self.by_method.items())),
            "by_route": dict(sorted(self.by_route.items())),
            "injected_failures": self.injected_failures,
            "lost_responses": self.lost_responses,
        }


def injected_error(status: int, retry_after_ms: int) -> HttpError:
    """The answer to a request the fault config fails with `status`."""
    if status == 429:
        return HttpError(
            429,
            "rate_limit_exceeded",
            "Rate limit exceeded (injected by runner emulator)",
            headers={
                "Retry-After": str(math.ceil(retry_after_ms / 1000)),
                "retry-after-ms": str(retry_after_ms),
            },
        )
    return HttpError(
        status,
        "service_unavailable" if status == 503 else "internal_error",
        f"{HTTPStatus(status).phrase} (injected by runner emulator)",
    )
