"""The runtime's errors: each says what happened and what to do, and names the resource.

They derive from `runner.errors.UserError`, so the CLI prints them as one line (exit 1)
without a traceback. A session of another workspace raises the same `SessionNotFoundError` as a
missing one: the caller cannot tell them apart (no existence leak across workspaces).
"""

from __future__ import annotations

from runner.errors import UserError


class LifecycleError(UserError):
    """Base of every runtime error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SpecProblemsError(LifecycleError):
    """The specs given to `Lifecycle.open` have errors (each at file:line:col)."""


class UnknownAgentError(LifecycleError):
    pass


class UnknownTeamError(LifecycleError):
    pass


class NotAppliedError(LifecycleError):
    """A protected environment runs only what was applied; this was not."""


class PermissionDeniedError(LifecycleError):
    pass


class WorkspaceRequiredError(LifecycleError):
    """A new session needs a workspace and the caller did not say which one."""


class SessionNotFoundError(LifecycleError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} not found (or not visible to this workspace)")
        self.session_id = session_id


class SessionStateError(LifecycleError):
    """The session is in a state that does not allow the call (ended, paused...)."""

    def __init__(self, session_id: str, state: str, message: str) -> None:
        super().__init__(f"session {session_id!r} is {state}: {message}")
        self.session_id = session_id
        self.state = state


class SessionConfigError(LifecycleError):
    """A session's preferences or feature toggles do not fit what its agents declare.

    `code` is `invalid_preferences` or `invalid_features` (`runner serve` answers 422)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PoolLimitError(LifecycleError):
    def __init__(self, pool: str, limit: int, *, waited: float = 0.0) -> None:
        waited_text = f" after waiting {waited:g}s" if waited else ""
        super().__init__(
            f"pool.{pool}: max_concurrent_sessions {limit} reached{waited_text}; end a session, "
            f"raise limits.max_concurrent_sessions, or pass wait= to queue for a free slot"
        )
        self.pool = pool
        self.limit = limit


class TokenBudgetError(LifecycleError):
    """A turn would go over a pool's `max_tokens_per_minute`: refused before anything is sent.
    `retry_after` is infinite when the message alone is over the limit."""

    def __init__(
        self, pool: str, limit: int, used: int, retry_after: float, *, estimate: int = 0
    ) -> None:
        if retry_after == float("inf"):
            message = (
                f"pool.{pool}: this message is about {estimate:,} tokens (estimated), over "
                f"max_tokens_per_minute {limit:,} on its own; send a shorter message or raise "
                "the limit"
            )
        elif estimate > limit - used:
            message = (
                f"pool.{pool}: this message is about {estimate:,} tokens (estimated) and "
                f"max_tokens_per_minute {limit:,} has {max(limit - used, 0):,} left ({used:,} "
                f"used in the last 60s); retry in {retry_after:.1f}s, pass wait= to send, or "
                "raise the limit"
            )
        else:
            message = (
                f"pool.{pool}: max_tokens_per_minute {limit:,} used up ({used:,} tokens in the "
                f"last 60s); retry in {retry_after:.1f}s, pass wait= to send, or raise the limit"
            )
        super().__init__(message)
        self.estimate = estimate
        self.pool = pool
        self.limit = limit
        self.used = used
        self.retry_after = retry_after


class SpendingBudgetError(LifecycleError):
    """A spending budget with `refuse: true` is spent for its period: the turn is refused
    before anything is sent. `retry_after`: seconds until the period ends (UTC)."""

    def __init__(
        self,
        subject: str,
        amount: float,
        spent: float,
        *,
        per: str,
        currency: str,
        retry_after: float,
    ) -> None:
        period = "daily" if per == "day" else "monthly"
        super().__init__(
            f"{subject}: the {period} budget of {amount:g} {currency} is spent ({spent:.4f} "
            f"{currency} this {per}); raise budget.amount, set budget.refuse: false, or wait "
            f"for the next {per} (in {retry_after / 3600:.1f} h)"
        )
        self.subject = subject
        self.amount = amount
        self.spent = spent
        self.retry_after = retry_after


class AgentLimitError(LifecycleError):
    """AGENT_DEFAULT_SESSION_LIMIT: too many concurrent sessions on one agent outside pools."""

    def __init__(self, agent: str, limit: int) -> None:
        super().__init__(
            f"agent.{agent}: {limit} concurrent sessions (AGENT_DEFAULT_SESSION_LIMIT) reached; "
            "end a session, put the agent in a ResourcePool, or raise the variable"
        )
        self.agent = agent
        self.limit = limit


class TurnFailedError(LifecycleError):
    """The agent could not answer (provider error); the session stays usable."""

    def __init__(self, session_id: str, agent: str, cause: Exception) -> None:
        super().__init__(f"session {session_id!r}: agent.{agent} failed to answer: {cause}")
        self.session_id = session_id
        self.agent = agent
        self.cause = cause


class ToolRoundLimitError(TurnFailedError):
    """The model still asked for functions after the agent's `max_tool_rounds` rounds: the turn
    ends unanswered (its pending calls were answered with an error so the conversation can go
    on); raise the limit, or look at why the model keeps calling."""

    def __init__(self, session_id: str, agent: str, rounds: int, tools: list[str]) -> None:
        cause = ValueError(
            f"the model still asked for {', '.join(tools)} after {rounds} tool round"
            f"{'s' if rounds != 1 else ''} (max_tool_rounds {rounds})"
        )
        super().__init__(session_id, agent, cause)
        self.rounds = rounds
        self.tools = tools


class ToolImplementationError(LifecycleError):
    """A function tool's `implementation` does not name an importable callable; the message
    names the spec position."""


class SharedLimitsUnavailableError(LifecycleError):
    """The store that holds pool limits for every process (Redis, or the registry) cannot be
    reached: admission fails closed (`runner serve` answers 503); live sessions go on."""

    def __init__(self, where: str, cause: Exception) -> None:
        detail = str(cause) or type(cause).__name__
        super().__init__(
            f"pool limits are shared through {where}, which cannot be reached ({detail}); new "
            "sessions in a limited pool are refused until it is back (live sessions go on); "
            "check that it runs and that the Environment's redis: URL is right"
        )
        self.where = where
