"""Raw documents -> typed spec documents: `validate_document` and its error messages.

The checking half of `runner.spec.loader`: a `RawDocument` from `yaml_reader` is checked for
`apiVersion` and `kind`, then validated against its kind's pydantic model. Every pydantic error is
translated (`_translate`) into a `Problem` at the position the source map gives for its path (the
key itself for an unknown field), with a message in the user's terms: the field's dotted path,
what was expected, what was found, and a "did you mean" for near-miss names.

Invariants: pydantic errors are never shown raw; a document whose YAML was unsound is not
validated (its YAML problem is already reported) but its address is still returned when its kind
and name are readable, so reference checks do not pile up follow-on errors; `difflib` is imported
only when a suggestion is needed (not on a valid run; `runner.spec.suggest`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from runner.spec.models import (
    DURATION_PATTERN,
    KINDS,
    SUPPORTED_API_VERSIONS,
    address_of,
    parse_duration,
)
from runner.spec.project import Path, Position, Problem, SpecDocument, dotted
from runner.spec.suggest import did_you_mean
from runner.spec.yaml_builder import RawDocument

__all__ = ["validate_document"]

_KIND_LIST = ", ".join(KINDS)


def _unwrap(annotation: Any) -> list[Any]:
    """The classes an annotation can hold, looking through Optional, Annotated and unions."""
    origin = get_origin(annotation)
    if origin is None:
        return [annotation]
    if origin in (list, dict, tuple, set, frozenset):
        return [annotation]
    return [c for arg in get_args(annotation) for c in _unwrap(arg)]


def _model_at(model: type[BaseModel], path: Sequence[Any]) -> type[BaseModel] | None:
    """The model class describing the mapping at `path` inside a `model` document."""
    current: list[Any] = [model]
    for item in path:
        following: list[Any] = []
        for candidate in current:
            origin = get_origin(candidate)
            if isinstance(item, int) and origin is list:
                following.extend(_unwrap(get_args(candidate)[0]))
            elif isinstance(item, str) and origin is dict:
                following.extend(_unwrap(get_args(candidate)[1]))
            elif isinstance(candidate, type) and issubclass(candidate, BaseModel):
                for name, info in candidate.model_fields.items():
                    if item in (name, info.alias):
                        following.extend(_unwrap(info.annotation))
        current = following
    for candidate in current:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _field_names(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _suggest(word: Any, candidates: Iterable[str]) -> str:
    return did_you_mean(word, candidates) if isinstance(word, str) else ""


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "literal_error": "",
}


def _field_description(model: type[BaseModel] | None, name: Any) -> str | None:
    if model is None:
        return None
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return info.description
    return None


def _translate(error: Any, raw: RawDocument, model: type[BaseModel], label: str) -> Problem:
    kind: str = error["type"]
    given = tuple(error["loc"])
    # pydantic marks a dict key's own error with a "[key]" item; an unknown field's last item is
    # the user's key itself, whatever it is named (a key written `"[key]"` included).
    last = given[-1:] if kind == "extra_forbidden" else ()
    loc = tuple(item for item in given[: len(given) - len(last)] if item != "[key]") + last
    where = dotted(loc)
    prefix = f"{where}: " if where else ""
    position = _position_of(raw, loc)
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing" and loc:
        parent = loc[:-1]
        message = f"missing required field {loc[-1]!r}"
        if parent:
            message = f"{dotted(parent)}: {message}"
        return Problem.at(_position_of(raw, parent), "schema.missing", f"{label}: {message}")
    if kind == "extra_forbidden" and loc:
        name = loc[-1]
        parent = loc[:-1]
        hint = _suggest(name, _field_names(_model_at(model, parent)))
        message = f"unknown field {name!r}{hint}"
        if parent:
            message = f"{dotted(parent)}: {message}"
        key_at = raw.key_positions.get(loc)
        key_pos = position if key_at is None else Position(raw.file, key_at[0], key_at[1])
        return Problem.at(key_pos, "schema.unknown-field", f"{label}: {message}")
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        hint = _suggest(value, re.findall(r"'([^']*)'", expected))
        shown = repr(value) if isinstance(value, str) else _describe(value)
        return Problem.at(
            position,
            "schema.value",
            f"{label}: {prefix}{shown} is not one of {expected}{hint}",
        )
    if kind in _EXPECTED:
        return Problem.at(
            position,
            "schema.type",
            f"{label}: {prefix}expected {_EXPECTED[kind]}, got {_describe(value)}",
        )
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == DURATION_PATTERN and isinstance(value, str):
            try:
                parse_duration(value)
                reason = f"invalid duration {value!r}"
            except ValueError as exc:
                reason = str(exc)
            return Problem.at(position, "value.duration", f"{label}: {prefix}{reason}")
        description = _field_description(_model_at(model, loc[:-1]), loc[-1] if loc else None)
        if loc and loc[-1] == "name":
            description = (
                "use letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
            )
        reason = description or f"must match {ctx.get('pattern')}"
        return Problem.at(
            position, "schema.value", f"{label}: {prefix}invalid value {value!r}: {reason}"
        )
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        code = "value.regex" if message.startswith("invalid regular expression") else "schema.value"
        return Problem.at(position, code, f"{label}: {prefix}{message}")
    if kind == "too_short" and ctx.get("min_length") == 1:
        return Problem.at(position, "schema.value", f"{label}: {prefix}must not be empty")
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return Problem.at(position, "schema.value", f"{label}: {prefix}must not be empty")
    message = str(error["msg"])
    message = message.replace("Input should be", "must be").replace("Value should", "must")
    if message.startswith("must be") and isinstance(value, int | float):
        message += f" (got {value})"
    return Problem.at(position, "schema.value", f"{label}: {prefix}{message}")


def _position_of(raw: RawDocument, path: Path) -> Position:
    while True:
        pos = raw.positions.get(path)
        if pos is not None:
            return pos
        if not path:
            return raw.position
        path = path[:-1]


def validate_document(raw: RawDocument) -> tuple[SpecDocument | None, list[Problem], str | None]:
    """Check one raw document against its kind's model.

    Returns the document (None when invalid), its problems, and its address when the kind and
    name could be read (so an invalid document still "exists" for reference checks).
    """
    data = raw.data
    if not raw.sound:  # the YAML problem is reported; only note which document this was
        kind, name = (data.get("kind"), data.get("name")) if type(data) is dict else (None, None)
        if isinstance(kind, str) and kind in KINDS and isinstance(name, str):
            return None, [], address_of(kind, name)
        return None, [], None
    if type(data) is not dict:
        return (
            None,
            [
                Problem.at(
                    raw.position,
                    "document.type",
                    "a spec document must be a mapping with apiVersion, kind and name, "
                    f"not {_describe(data)}",
                )
            ],
            None,
        )
    kind = data.get("kind")
    name = data.get("name")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    address = (
        address_of(kind, name)
        if model is not None and isinstance(kind, str) and isinstance(name, str)
        else None
    )
    label = f"{kind} {name!r}" if model is not None and isinstance(name, str) else str(kind)
    problems: list[Problem] = []
    if "kind" not in data:
        problems.append(
            Problem.at(raw.position, "kind.missing", f"missing 'kind'; one of: {_KIND_LIST}")
        )
    elif model is None:
        hint = _suggest(kind, KINDS)
        problems.append(
            Problem.at(
                raw.positions.get(("kind",), raw.position),
                "kind.unknown",
                f"unknown kind {kind!r}{hint}; one of: {_KIND_LIST}",
            )
        )
    api_version = data.get("apiVersion")
    readable = ", ".join(SUPPORTED_API_VERSIONS)
    if "apiVersion" not in data:
        problems.append(
            Problem.at(
                raw.position,
                "api-version",
                f"missing 'apiVersion' (this runner reads {readable})",
            )
        )
    elif api_version not in SUPPORTED_API_VERSIONS:
        problems.append(
            Problem.at(
                raw.positions.get(("apiVersion",), raw.position),
                "api-version",
                f"unknown apiVersion {api_version!r}; this runner reads {readable}",
            )
        )
    if problems or model is None:
        return None, problems, address
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        label = f"{kind} {name!r}" if isinstance(name, str) else str(kind)
        for error in exc.errors(include_url=False):
            problems.append(_translate(error, raw, model, label))
        return None, problems, address
    return SpecDocument(spec, raw.position, raw.positions), [], address
