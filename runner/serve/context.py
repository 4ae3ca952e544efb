"""What every part of one `runner serve` shares: the runtime, the authenticator, the limits,
the metrics and the draining state.

Role: built once by `runner.serve.app.build_app` and reachable from every request
(`request.app.state.serve`) and from the Socket.io layer. Holds no per-request state.

Invariants:
  - Every limit is finite; `ServeLimits` is the one place they are set.
  - Once `draining` is set it stays set: new sessions and new turns are refused (503) while
    requests already in flight (`api_in_flight`) finish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner import Lifecycle
from runner.serve.authn import Authenticator
from runner.serve.errors import ApiError
from runner.serve.metrics import ServeMetrics

__all__ = ["ServeContext", "ServeLimits"]


@dataclass(frozen=True, slots=True)
class ServeLimits:
    max_body_bytes: int = 256 * 1024
    max_requests_in_flight: int = 512
    max_socket_connections: int = 2000
    max_socket_message_bytes: int = 64 * 1024
    max_rooms_per_socket: int = 200
    drain_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not getattr(self, name) > 0:
                raise ValueError(f"serve limit {name} must be positive")


class ServeContext:
    def __init__(
        self,
        lc: Lifecycle,
        authenticator: Authenticator,
        *,
        limits: ServeLimits | None = None,
        spec_paths: Sequence[str | Path] = (),
        env_name: str | None = None,
    ) -> None:
        self.lc = lc
        self.authenticator = authenticator
        self.limits = limits or ServeLimits()
        self.spec_paths = [Path(p) for p in spec_paths]
        self.env_name = env_name
        self.draining = False
        self.api_in_flight = 0
        self.metrics = ServeMetrics(lc, draining=lambda: self.draining)

    def refuse_if_draining(self) -> None:
        if self.draining:
            raise ApiError(
                503,
                "draining",
                "the server is shutting down and takes no new sessions or messages; "
                "retry against another instance",
                {"Retry-After": "5"},
            )
