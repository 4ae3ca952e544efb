"""Structured inputs in the local store (and so the emulator), as Foundry honours them.

Role in the flow: `AgentVersions.create_version` refuses a definition whose templates name an
input it does not declare (`check_definition`, as the service answers: 400 `invalid_payload`);
`Conversations.respond` resolves a request's `structured_inputs` against the answering
version's declarations (`resolve_inputs`: unknown names refused, `default_value` for what the
request leaves out, a required input missing refused), fills the instructions' `{{name}}`
placeholders (the response echoes them, as Foundry's does) and lets the deterministic reply show
what the session's values changed (`session_lines`).

Where the service's behaviour is not on record (a request naming an undeclared input, a
required input missing), the store refuses with 400 `invalid_payload`: stricter than the
service can be, never kinder.

Invariants: pure functions, no I/O; the reply suffix is a pure function of (instructions,
values), so scenarios can predict it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from runner.providers.base import (
    PLACEHOLDER_RE,
    ProviderError,
    fill_placeholders,
    placeholder_names,
)

__all__ = [
    "MAX_SESSION_TEXT",
    "InputsDefinition",
    "check_definition",
    "invalid_payload",
    "resolve_inputs",
    "session_lines",
]

MAX_SESSION_TEXT = 400
"""Longest summary of session-specific instructions a local reply carries."""


def invalid_payload(message: str) -> ProviderError:
    """The error Foundry answers a definition or request it cannot template with (HTTP 400)."""
    return ProviderError(message, code="invalid_payload", status=400)


@dataclass(frozen=True)
class InputsDefinition:
    """What a version declares for structured inputs: its instructions and declarations."""

    instructions: str
    declared: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(cls, definition: Mapping[str, Any]) -> InputsDefinition | None:
        """The version's structured inputs (None: it declares none)."""
        declared = definition.get("structured_inputs")
        if not isinstance(declared, Mapping) or not declared:
            return None
        instructions = definition.get("instructions")
        return cls(instructions if isinstance(instructions, str) else "", declared)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def check_definition(definition: Mapping[str, Any]) -> None:
    """Refuse a definition declaring `structured_inputs` whose instructions or tools use an
    undeclared `{{input}}`, or whose `structured_inputs` is not an object of objects. (Without
    `structured_inputs`, Foundry's treatment of braces is not on record: left alone.)"""
    declared = definition.get("structured_inputs")
    if declared is None:
        return
    if not isinstance(declared, Mapping) or not all(
        isinstance(v, Mapping) for v in declared.values()
    ):
        raise invalid_payload("'structured_inputs' must map input names to objects")
    texts = [definition.get("instructions"), definition.get("tools")]
    for text in (t for value in texts for t in _strings(value)):
        for name in placeholder_names(text):
            if name not in declared:
                raise invalid_payload(
                    f"The supplied value is invalid: the template names {{{{{name}}}}}, which "
                    "'structured_inputs' does not declare"
                )


def resolve_inputs(
    definition: InputsDefinition | None, supplied: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The value of every declared input for one request: supplied, else `default_value`."""
    supplied = supplied or {}
    declared = definition.declared if definition is not None else {}
    unknown = sorted(set(supplied) - set(declared))
    if unknown:
        raise invalid_payload(
            f"structured input {unknown[0]!r} is not declared by the agent version "
            f"(declared: {', '.join(sorted(declared)) or 'none'})"
        )
    values: dict[str, Any] = {}
    for name, entry in declared.items():
        if name in supplied:
            values[name] = supplied[name]
        elif "default_value" in entry:
            values[name] = entry["default_value"]
        elif entry.get("required"):
            raise invalid_payload(f"structured input {name!r} is required and was not given")
    return values


def session_lines(instructions: str, values: Mapping[str, Any]) -> str:
    """The instruction lines that hold an input, filled, as one short text (empty: none)."""
    lines: list[str] = []
    for line in instructions.splitlines():
        if PLACEHOLDER_RE.search(line) is None:
            continue
        for filled in fill_placeholders(line, values).splitlines():
            filled = filled.strip()
            if filled and filled not in lines:
                lines.append(filled)
    text = " / ".join(lines)
    if len(text) > MAX_SESSION_TEXT:
        text = text[: MAX_SESSION_TEXT - 3] + "..."
    return text
