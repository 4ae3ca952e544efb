"""Whether a value fits a declared preference: its allowed `values` or its JSON Schema.

Role in the flow: `runner validate` checks every preference's `default` and every value an
Environment or Workspace sets (`runner.spec.checks.configuration`); the runtime checks a
session's preferences when the session is created (`runner.runtime.sessions.configuration`).
Both ask `value_problem`, so a value `validate` accepts is one a session may send.

Invariants: `jsonschema` is imported only for a preference declared with a `schema` (a project
of `values` lists never pays for it); a schema's validator is built once per schema text;
values are compared as JSON compares them (`true` is not `1`, `1` is `1.0`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from runner.spec.models import Preference

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
    """Why `schema` is not a JSON Schema (draft 2020-12) (None: it is one)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message}"
    return None


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_text))
