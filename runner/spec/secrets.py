"""`${VAR}` references in Environment and Channel values: find, resolve late, never leak.

Role in the flow: specs keep references as written all the way through load, validate, plan and
the registry (bodies store `${VAR}`, never values). Only the moment an environment or a channel is
*used* (a provider is built, a notification is sent) does its owner call `resolve_model` with the
process environment. `mask` gives the text plan output shows; `redact` scrubs resolved values
from log lines.

Syntax (as in a shell, on one string at a time, anywhere inside it):
  `${NAME}`            the variable's value; an error naming it when it is unset
  `${NAME:-default}`   the value, or `default` when the variable is unset or empty
  `$${`                a literal `${` (no reference)
NAME is letters, digits and `_`, not starting with a digit; a default runs to the first `}`.

Invariants:
  - `find_references`, `check_references` and `mask` read no environment variable; validate uses
    only these, so it never needs (or sees) a secret.
  - `resolve` either substitutes every reference or raises; it never returns a partly resolved
    string. `MissingSecretError` names the variable and the resource that needs it.
  - Dict keys are never resolved, only string values (nested in dicts and lists included).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from runner.spec.models import Envelope, address_of

__all__ = [
    "MissingSecretError",
    "Reference",
    "ReferenceProblem",
    "SecretSyntaxError",
    "check_references",
    "find_references",
    "mask",
    "mask_value",
    "redact",
    "referenced_values",
    "resolve",
    "resolve_model",
    "resolve_value",
]

PathItem = str | int
REDACTED = "***"

_TOKEN = re.compile(
    r"(?P<escape>\$\$\{)"
    r"|(?P<ref>\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\})"
    r"|(?P<bad>\$\{[^}]*\}?)"
)

M = TypeVar("M", bound=BaseModel)


class SecretSyntaxError(ValueError):
    """A `${` that is not a well-formed reference."""


class MissingSecretError(LookupError):
    """A `${NAME}` without default whose variable is not set."""

    def __init__(self, name: str, *, address: str | None = None) -> None:
        self.name = name
        self.address = address
        needed_by = f" (needed by {address})" if address else ""
        super().__init__(
            f"environment variable {name} is not set{needed_by}: set it "
            f"(e.g. export {name}=...), or give a default with ${{{name}:-default}}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Reference:
    """One reference as written: `text` is exactly what the spec holds (`${A:-b}`)."""

    name: str
    default: str | None
    text: str
    path: tuple[PathItem, ...] = ()
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class ReferenceProblem:
    path: tuple[PathItem, ...]
    text: str
    message: str


def _strings(value: Any, path: tuple[PathItem, ...]) -> Iterable[tuple[tuple[PathItem, ...], str]]:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python", by_alias=True)
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def find_references(value: Any) -> list[Reference]:
    """Every well-formed reference in `value` (a string, a model, or nested dicts/lists).

    Paths use the names as written in YAML (aliases such as `from`), in document order.
    """
    found: list[Reference] = []
    for path, text in _strings(value, ()):
        for match in _TOKEN.finditer(text):
            if match.group("ref") is not None:
                found.append(
                    Reference(
                        name=match.group("name"),
                        default=match.group("default"),
                        text=match.group(0),
                        path=path,
                        start=match.start(),
                        end=match.end(),
                    )
                )
    return found


def _bad_message(text: str) -> str:
    return (
        f"malformed reference {text!r}: write ${{NAME}} or ${{NAME:-default}} (NAME is letters, "
        "digits and _, not starting with a digit), or $${ for a literal ${"
    )


def check_references(value: Any) -> list[ReferenceProblem]:
    """Malformed `${...}` in `value`, for validate; reads no environment variable."""
    problems: list[ReferenceProblem] = []
    for path, text in _strings(value, ()):
        for match in _TOKEN.finditer(text):
            bad = match.group("bad")
            if bad is not None:
                problems.append(ReferenceProblem(path=path, text=bad, message=_bad_message(bad)))
    return problems


def resolve(text: str, environ: Mapping[str, str], *, address: str | None = None) -> str:
    """`text` with every reference replaced by its value; `$${` becomes `${`.

    MissingSecretError for `${NAME}` when NAME is unset; SecretSyntaxError for a malformed `${`.
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group("escape") is not None:
            return "${"
        bad = match.group("bad")
        if bad is not None:
            where = f" in {address}" if address else ""
            raise SecretSyntaxError(_bad_message(bad) + where)
        name = match.group("name")
        default = match.group("default")
        value = environ.get(name)
        if default is not None:
            return value if value else default
        if value is None:
            raise MissingSecretError(name, address=address)
        return value

    return _TOKEN.sub(substitute, text)


def resolve_value(value: Any, environ: Mapping[str, str], *, address: str | None = None) -> Any:
    """A copy of nested dicts/lists with every string value resolved (keys are left alone)."""
    if isinstance(value, str):
        return resolve(value, environ, address=address)
    if isinstance(value, Mapping):
        return {k: resolve_value(v, environ, address=address) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve_value(v, environ, address=address) for v in value]
    return value


def resolve_model(model: M, environ: Mapping[str, str], *, address: str | None = None) -> M:
    """A validated copy of `model` (an Environment, a Channel...) with every string resolved.

    `address` defaults to the model's own (`channel.slack`) so errors say who needs the variable.
    """
    if address is None and isinstance(model, Envelope):
        address = address_of(type(model).__name__, model.name)
    data = model.model_dump(mode="python", by_alias=True, exclude_unset=False)
    return type(model).model_validate(resolve_value(data, environ, address=address))


def mask(text: str) -> str:
    """The text as plan output shows it: every reference as written (`${VAR}`, `${VAR:-d}`).

    Never looks a variable up, so no value can appear. Idempotent.
    """
    return _TOKEN.sub(lambda m: m.group(0), text)


def mask_value(value: Any) -> Any:
    """`mask` applied to every string of nested dicts/lists."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def referenced_values(value: Any, environ: Mapping[str, str]) -> dict[str, str]:
    """NAME -> value of every set, non-empty variable `value` refers to (to feed `redact`)."""
    values: dict[str, str] = {}
    for ref in find_references(value):
        found = environ.get(ref.name)
        if found:
            values[ref.name] = found
    return values


def redact(text: str, values: Iterable[str] | Mapping[str, str]) -> str:
    """`text` with every occurrence of the given secret values scrubbed.

    With a mapping NAME -> value, an occurrence becomes `${NAME}`; with plain values, `***`.
    Longer values are replaced first, so a value containing another is scrubbed whole.
    """
    if isinstance(values, Mapping):
        pairs = [(v, f"${{{k}}}") for k, v in values.items() if v]
    else:
        pairs = [(v, REDACTED) for v in values if v]
    pairs.sort(key=lambda pair: len(pair[0]), reverse=True)
    if not pairs:
        return text
    pattern = re.compile("|".join(re.escape(v) for v, _ in pairs))
    lookup = dict(pairs)
    return pattern.sub(lambda m: lookup[m.group(0)], text)
