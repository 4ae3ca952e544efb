"""Environment: where specs are applied, with which provider, prefix and variables.

Role in the flow: the CLI picks an environment (`--env`, else the default one); plan, apply and
the runtime build its provider (`runner.providers.build_provider`) and render every agent with
its `vars` and `name_prefix`. Its `${VAR}` values are resolved only when the environment is
used, never by validate or plan.

No `from __future__ import annotations` here: pydantic would evaluate every annotation string at
import, paid on every `runner validate` (see `base`).
"""

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from runner.spec.models.auth import AuthConfig
from runner.spec.models.base import Envelope, Strict
from runner.spec.models.configuration import ConfigName
from runner.spec.models.costs import Pricing

__all__ = ["Environment", "QualitySettings", "TelemetrySettings"]


class QualitySettings(Strict):
    """How conversation quality is judged here (`Lifecycle.analyze_conversation_quality`)."""

    evaluator: str | None = Field(
        default=None,
        description="An agent asked to score each analysed conversation (0 to 1), beside the "
        "measured scores.",
    )
    response_time_target_ms: float | None = Field(
        default=None, gt=0, description="A turn answered within this is on time (default 5000)."
    )


class TelemetrySettings(Strict):
    """What runner's OpenTelemetry spans may carry (collection itself is the SDK's business)."""

    record_content: bool | None = Field(
        default=None,
        description=(
            "Put message text into spans (gen_ai.input/output.messages). Unset: follow "
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT; off by default."
        ),
    )


_STATE_SCHEMES = ("postgresql://", "postgres://", "sqlite:///")


class Environment(Envelope):
    """Where specs are applied. `${VAR}` values resolve only when the environment is used."""

    kind: Literal["Environment"]
    provider: Literal["local", "foundry"] = "local"
    endpoint: str | None = None
    default: bool = False
    name_prefix: str = ""
    project: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$",
        description=(
            "The runner project that owns this environment's agents: a letter or digit, then "
            "up to 127 letters, digits and . _ / : - (default: derived from the spec folder, "
            "its parent's name and its own, e.g. shop/specs)"
        ),
    )
    protected: bool = False
    vars: dict[str, Any] = Field(default_factory=dict)
    preferences: dict[ConfigName, Any] = Field(
        default_factory=dict,
        description="Preference defaults for every agent here (over the declared defaults).",
    )
    features: dict[ConfigName, bool] = Field(
        default_factory=dict,
        description="Feature toggles for every agent here (over the declared defaults).",
    )
    preview_features: list[
        Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]*=[A-Za-z0-9]+$", max_length=100)]
    ] = Field(
        default_factory=list,
        max_length=64,
        description="Foundry preview features to opt in to, e.g. `WorkflowAgents=V1Preview`: "
        "sent as the `Foundry-Features` header on agent calls (foundry provider).",
    )
    data_dir: str | None = Field(
        default=None, description="Local provider: where its SQLite store lives (default .runner)."
    )
    pricing: Pricing | None = Field(
        default=None,
        description="What each model deployment's tokens cost here (for costs and budgets).",
    )
    quality: QualitySettings = Field(
        default_factory=QualitySettings,
        description="Conversation quality: an evaluator agent, the response-time target.",
    )
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings,
        description="OpenTelemetry: whether spans may carry message text.",
    )
    state: str | None = Field(
        default=None,
        description="Where the registry and the runtime's sessions live: unset (the embedded "
        "SQLite file), sqlite:///PATH, or postgresql://USER@HOST:PORT/DB (shared by many "
        "hosts; a ${VAR} reference keeps a password out of the specs).",
    )
    auth: AuthConfig | None = Field(
        default=None,
        description="Who may call `runner serve` for this environment: API keys and/or JWTs.",
    )
    redis: str | None = Field(
        default=None,
        description=(
            "Redis URL (redis:// or rediss://, `${VAR}` allowed) shared by every runtime process "
            "of this environment: pool limits and events across processes and hosts."
        ),
    )

    @model_validator(mode="after")
    def _state_is_a_state_url(self) -> "Environment":
        state = self.state
        if state and "${" not in state and not state.startswith(_STATE_SCHEMES):
            raise ValueError(
                "'state' is postgresql://USER@HOST:PORT/DATABASE, sqlite:///PATH, "
                "or a ${VAR} reference to one"
            )
        return self

    @model_validator(mode="after")
    def _foundry_needs_endpoint(self) -> "Environment":
        if self.provider == "foundry" and not self.endpoint:
            raise ValueError("a foundry environment needs 'endpoint'")
        if self.redis is not None and not self.redis.startswith(
            ("redis://", "rediss://", "unix://", "${")
        ):
            raise ValueError("'redis' must be a redis://, rediss:// or unix:// URL (or ${VAR})")
        return self
