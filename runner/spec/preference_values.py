"""Whether a value fits a declared preference: its allowed `values` or its JSON Schema.

Role in the flow: `runner validate` checks every preference's `default` and every value an
Environment or Workspace sets (`runner.spec.checks.configuration`); the runtime checks a
session's preferences when the session is created (`runner.runtime.sessions.configuration`).
Both ask `value_problem`, so a value `validate` accepts is one a session may send.

Invariants: `jsonschema` is imported only for a preference declared with a `schema` (a project
of `values` lists never pays for it); a schema's validator is built once per schema text;
values are compared as JSON compares them (`true` is not `1`, `1` is `1.0`). A schema's
regular expressions (`pattern`, `patternProperties`, and the `additionalProperties` that
depend on them) are matched by RE2 (`runner.spec.patterns`), linear in the value: a session's
value cannot make validation backtrack; `schema_problem` reports a pattern RE2 cannot run, and
`unevaluatedProperties` beside `patternProperties` (which jsonschema would match with Python's
backtracking engine).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from runner.spec.models import Preference
from runner.spec.patterns import PatternSyntaxError, compile_pattern

__all__ = ["MAX_VALUE_TEXT", "schema_problem", "value_problem"]

MAX_VALUE_TEXT = 2_000
"""Longest text a preference value may be (it is matched against the schema's patterns)."""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def value_problem(pref: Preference, value: Any) -> str | None:
    """Why `value` does not fit `pref` (None: it fits)."""
    if isinstance(value, str) and len(value) > MAX_VALUE_TEXT:
        return f"the value is {len(value)} characters long (at most {MAX_VALUE_TEXT})"
    if pref.values is not None:
        if any(_same(value, allowed) for allowed in pref.values):
            return None
        allowed = ", ".join(_show(v) for v in pref.values)
        return f"{_show(value)} is not one of the allowed values ({allowed})"
    assert pref.schema_ is not None
    validator = _validator(json.dumps(pref.schema_, sort_keys=True))
    error = next(iter(validator.iter_errors(value)), None)
    if error is None:
        return None
    where = "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"{_show(value)} does not match the preference's schema{where}: {error.message}"


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why `schema` is not a JSON Schema (draft 2020-12) whose patterns run in linear time
    (None: it is one)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message}"
    return _patterns_problem(schema)


def _patterns_problem(schema: Any) -> str | None:
    """A pattern of `schema` RE2 cannot run, or `unevaluatedProperties` beside patterns."""
    stack = [schema]
    patterned = unevaluated = False
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        sources = list(node.get("patternProperties") or ())
        patterned = patterned or bool(sources)
        unevaluated = unevaluated or "unevaluatedProperties" in node
        if isinstance(node.get("pattern"), str):
            sources.append(node["pattern"])
        for source in sources:
            try:
                compile_pattern(source)
            except PatternSyntaxError as exc:
                return f"not a usable JSON Schema: {exc.message}"
        stack.extend(node.values())
    if patterned and unevaluated:
        return (
            "not a usable JSON Schema: unevaluatedProperties beside patternProperties is not "
            "supported (its patterns would not run in linear time); use additionalProperties"
        )
    return None


def _search(source: str, text: str) -> bool:
    return compile_pattern(source).search(text) is not None


def _pattern(validator: Any, source: str, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _search(source, instance):
        yield ValidationError(f"{instance!r} does not match {source!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for source, subschema in patterns.items():
        for key, value in instance.items():
            if _search(source, key):
                yield from validator.descend(value, subschema, path=key, schema_path=source)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in properties and not any(_search(p, key) for p in patterns)
    ]
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and extras:
        names = ", ".join(repr(key) for key in sorted(extras, key=str))
        yield ValidationError(f"additional properties are not allowed ({names})")


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend

    linear = extend(
        Draft202012Validator,
        validators={
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )
    return linear(json.loads(schema_text))
