"""What every spec kind builds on: the envelope, strict models, durations and field types.

Role in the flow: the kind modules (`prompts`, `teams`, `pools`, `alerts`, `environments`,
`scenarios`) build their models from `Strict` and `Envelope` and the field types here; the loader
reports a document whose `apiVersion` is not in `SUPPORTED_API_VERSIONS`, and the runtime and
checks read durations with `parse_duration`.

Invariants: every model is strict (`extra="forbid"`, frozen), so an unknown or misspelt field is
an error with a position; `DURATION_PATTERN` is the one rule for durations: the JSON Schema
publishes it, the loader recognises its mismatch as `value.duration`, and `parse_duration`
accepts exactly the texts it matches.

No `from __future__ import annotations` here (nor in any model module): pydantic would have to
evaluate every annotation string at import, paid on every `runner validate`.
"""

import re
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from runner.providers.base import MAX_DESCRIPTION

__all__ = [
    "API_VERSION",
    "DURATION_PATTERN",
    "SUPPORTED_API_VERSIONS",
    "ApiVersion",
    "Comparison",
    "Duration",
    "Envelope",
    "Fraction",
    "Name",
    "NonNegInt",
    "PositiveInt",
    "Regex",
    "Strict",
    "check_regex",
    "parse_duration",
]

ApiVersion = Literal["runner/v1"]
"""The apiVersions this runner reads."""
SUPPORTED_API_VERSIONS: tuple[str, ...] = get_args(ApiVersion)
API_VERSION: str = SUPPORTED_API_VERSIONS[0]
"""The apiVersion runner writes (scenario documents it builds, examples)."""

DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `250ms`, `60s`, `5m`, `1h`, `2d`; ValueError otherwise."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: write a number and a unit (ms, s, m, h, d), e.g. 60s"
        )
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def check_regex(value: str) -> str:
    """`value`, or ValueError saying why RE2 cannot run it (`runner.spec.patterns`)."""
    from runner.spec.patterns import check_pattern

    return check_pattern(value)


Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        description="A duration: a number and a unit (ms, s, m, h, d), e.g. 250ms, 60s, 5m, 1h.",
    ),
]
Regex = Annotated[
    str, Field(description="A regular expression in RE2 syntax, matched in linear time.")
]
Fraction = Annotated[float, Field(ge=0, le=1)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$",
        description="Letters, digits, '-', '_', '.'; starts and ends with a letter or digit.",
    ),
]

Comparison = Literal["above", "below"]
"""How a figure is compared with a threshold (alerts, scaling triggers)."""


class Strict(BaseModel):
    """Base of every spec model: unknown fields are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Envelope(Strict):
    """Fields every document carries."""

    api_version: ApiVersion = Field(alias="apiVersion")
    name: Name
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)  # Foundry's limit
    labels: dict[str, str] = Field(default_factory=dict)
