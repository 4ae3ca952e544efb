"""Dynamic configuration: declared preferences, feature toggles and workspace overlays.

Role in the flow: a Template or Agent declares the `preferences` a session may set and the
`features` that can be switched on or off; an Environment and a `Workspace` document set their
values for every session there; a session's own values win. Rendering
(`runner.spec.render_session`) turns the texts that read `prefs`, `features` or a workspace's
`vars` into Foundry structured-input placeholders, so one agent version serves every
combination; the runtime (`runner.runtime.sessions.configuration`) checks a session's values and
computes the inputs each request carries.

Precedence (later wins), for every agent of a session:
  preferences  declared `default` (Template < Agent) < Environment `preferences`
               < Workspace `preferences` < the session's `preferences`;
  features     declared `default` (Template < Agent) < Environment `features`
               < Workspace `features` < the session's `features`;
  vars         Template < Agent < Environment < Workspace (sessions never set vars).

No `from __future__ import annotations` here: pydantic would evaluate every annotation string at
import, paid on every `runner validate` (see `base`).
"""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from runner.spec.models.base import Envelope, Strict
from runner.spec.models.costs import Budget

__all__ = [
    "CONFIG_NAME_PATTERN",
    "RESERVED_INPUT_PREFIX",
    "ConfigName",
    "Feature",
    "Preference",
    "Workspace",
]

RESERVED_INPUT_PREFIX = "runner_"
"""Structured inputs whose name starts with this are runner's own (computed text blocks)."""

CONFIG_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


def _not_reserved(name: str) -> str:
    if name.startswith(RESERVED_INPUT_PREFIX):
        raise ValueError(
            f"{name!r}: names starting with {RESERVED_INPUT_PREFIX!r} are runner's own; "
            "choose another name"
        )
    return name


ConfigName = Annotated[
    str,
    AfterValidator(_not_reserved),
    Field(
        pattern=CONFIG_NAME_PATTERN,
        description="Lower-case letters, digits and '_', starting with a letter, at most 63 "
        "characters; names starting with 'runner_' are runner's own.",
    ),
]
"""A preference or feature name: also its Foundry structured-input name."""

Scalar = str | int | float | bool


class Preference(Strict):
    """A value a session may set, e.g. `formality`: allowed `values` or a JSON `schema`."""

    description: str | None = Field(default=None, max_length=512)
    values: list[Scalar] | None = Field(
        default=None, min_length=1, max_length=100, description="The allowed values."
    )
    schema_: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="A JSON Schema (draft 2020-12) the value must match (instead of `values`).",
    )
    default: Any = Field(
        default=None, description="The value when nothing sets it (needed unless `required`)."
    )
    required: bool = Field(default=False, description="Sessions must set it (no default).")

    @model_validator(mode="after")
    def _values_or_schema_and_default(self) -> "Preference":
        if (self.values is None) == (self.schema_ is None):
            raise ValueError("declare the allowed 'values' or a JSON 'schema' (one of them)")
        has_default = "default" in self.model_fields_set
        if self.required and has_default:
            raise ValueError("a required preference has no 'default'; drop one of them")
        if not self.required and not has_default:
            raise ValueError("give a 'default' (or set 'required: true')")
        return self

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the value: `schema` as written, or an enum of `values`."""
        if self.schema_ is not None:
            return dict(self.schema_)
        assert self.values is not None
        types = sorted({_json_type(v) for v in self.values})
        return {"type": types[0] if len(types) == 1 else types, "enum": list(self.values)}


def _json_type(value: Scalar) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


class Feature(Strict):
    """A capability switched on or off per environment, workspace or session."""

    description: str | None = Field(default=None, max_length=512)
    default: bool = False
    tools: list[str] = Field(
        default_factory=list,
        description="Tools it enables: function tools by `name` (switchable per session); "
        "server-side tools by `type` (part of the agent version: switchable per environment).",
    )


class Workspace(Envelope):
    """Configuration for every session of one workspace, applied when a session starts."""

    kind: Literal["Workspace"]
    workspace_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$",
        description="The workspace id sessions carry (default: the document's name).",
    )
    vars: dict[str, Any] = Field(default_factory=dict)
    preferences: dict[ConfigName, Any] = Field(default_factory=dict)
    features: dict[ConfigName, bool] = Field(default_factory=dict)
    budget: Budget | None = Field(
        default=None, description="What the workspace's sessions may spend per day or month."
    )

    @property
    def id(self) -> str:
        """The workspace id this overlay applies to."""
        return self.workspace_id or self.name
