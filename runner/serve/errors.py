"""Errors as the API shows them: `{"error": {"code", "message"}}` with the issue's statuses.

Role: the one mapping from what can go wrong (authentication, the serve layer's own checks,
the runtime's errors, bad bodies) to an HTTP status, a stable `code` and a message saying what
to do. REST handlers raise; `runner.serve.app` installs the handlers; Socket.io
acknowledgements use `error_body` for the same shapes.

Statuses: 401 no or bad credentials, 403 missing permission, 404 missing or another
workspace's, 409 a state that forbids it, 413 a body too large, 422 a bad body, 429 a pool or
token limit (`Retry-After` when a place is expected at a known time), 502 the agent's provider
failed, 503 draining, or the issuer's keys or the shared pool limits (Redis) unreachable. Never
a traceback: anything else is a 500 naming an incident id, with the traceback in the server's log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from runner.runtime.errors import (
    AgentLimitError,
    LifecycleError,
    NotAppliedError,
    PermissionDeniedError,
    PoolLimitError,
    SessionConfigError,
    SessionNotFoundError,
    SessionStateError,
    SharedLimitsUnavailableError,
    SpecProblemsError,
    SpendingBudgetError,
    TokenBudgetError,
    TurnFailedError,
    UnknownAgentError,
    UnknownTeamError,
    WorkspaceRequiredError,
)
from runner.runtime.operators.desk import EscalationNotPendingError
from runner.runtime.operators.human_queue import HumanQueueError
from runner.serve.authn import Unauthenticated
from runner.serve.identity import NotVisible
from runner.serve.jwks import JwksUnavailable

__all__ = ["ApiError", "error_body", "from_exception"]

MAX_MESSAGE = 2000


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def body(self) -> dict[str, dict[str, str]]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message[:MAX_MESSAGE]}}


def from_exception(exc: BaseException) -> ApiError | None:
    """The API error an exception stands for; None: not one we expect (a 500)."""
    if isinstance(exc, ApiError):
        return exc
    text = str(exc)
    simple: list[tuple[type[BaseException], int, str]] = [
        (PermissionDeniedError, 403, "forbidden"),
        (NotVisible, 404, "not_found"),
        (SessionNotFoundError, 404, "session_not_found"),
        (UnknownAgentError, 404, "agent_not_found"),
        (UnknownTeamError, 404, "team_not_found"),
        (WorkspaceRequiredError, 422, "workspace_required"),
        (SpecProblemsError, 422, "invalid_specs"),
        (SessionStateError, 409, "session_state"),
        (EscalationNotPendingError, 409, "escalation_not_pending"),
        (HumanQueueError, 409, "human_queue"),
        (NotAppliedError, 409, "not_applied"),
        (AgentLimitError, 429, "agent_limit"),
        (PoolLimitError, 429, "pool_limit"),
        (TurnFailedError, 502, "agent_failed"),
    ]
    if isinstance(exc, Unauthenticated):
        return ApiError(401, "unauthenticated", text, {"WWW-Authenticate": "Bearer"})
    if isinstance(exc, JwksUnavailable):
        return ApiError(
            503,
            "auth_unavailable",
            "the token issuer's keys cannot be fetched now; retry shortly",
            {"Retry-After": "5"},
        )
    if isinstance(exc, SharedLimitsUnavailableError):  # Redis (or the registry) is down
        return ApiError(503, "limits_unavailable", text, {"Retry-After": "5"})
    if isinstance(exc, SessionConfigError):  # preferences or features that do not fit
        return ApiError(422, exc.code, text)
    if isinstance(exc, SpendingBudgetError):  # refused until the budget's period ends
        retry = str(max(1, math.ceil(exc.retry_after)))
        return ApiError(429, "spending_budget", text, {"Retry-After": retry})
    if isinstance(exc, TokenBudgetError):
        if math.isinf(exc.retry_after):  # the message alone is over the limit: never admitted
            return ApiError(429, "token_budget", text)
        retry = str(max(1, math.ceil(exc.retry_after)))
        return ApiError(429, "token_budget", text, {"Retry-After": retry})
    for kind, status, code in simple:
        if isinstance(exc, kind):
            return ApiError(status, code, text)
    if isinstance(exc, LifecycleError):  # a runtime refusal without its own class
        return ApiError(409, "refused", text)
    return None
