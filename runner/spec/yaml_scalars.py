"""YAML core-schema scalars -> Python values, safe only: the reader's value step.

`yaml_reader` and `yaml_builder` hand every scalar they read here: `resolve_plain` finds the
implicit tag of a plain (unquoted, untagged) scalar the way PyYAML's SafeLoader would,
`construct_scalar` builds the value of a core tag (int, float, bool, null), and `plain_value` does
both for the reader's hot path, caching the value in `PLAIN_VALUES` keyed by the scalar's text
(the reader looks a text up there itself before it calls `plain_value`).

Invariants: only YAML's core types are ever constructed (no `!!python/*`, no `!!set`);
timestamps, `!!value`, `!!yaml` and the merge key stay strings (`STRINGY_TAGS`); a text that does
not fit its tag raises ValueError from `construct_scalar` and yields `SLOW_PATH` from
`plain_value` (never cached), so the general builder reports it at its position. Both caches are
bounded (cleared past 100,000 entries) and hold only immutable values.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = [
    "BOOL_TAG",
    "FLOAT_TAG",
    "INT_TAG",
    "MAP_TAG",
    "MERGE_TAG",
    "NULL_TAG",
    "PLAIN_VALUES",
    "SEQ_TAG",
    "SLOW_PATH",
    "STRINGY_TAGS",
    "STR_TAG",
    "construct_scalar",
    "plain_value",
    "resolve_plain",
    "short_tag",
]

_TAG = "tag:yaml.org,2002:"
STR_TAG, INT_TAG, FLOAT_TAG, BOOL_TAG, NULL_TAG = (
    _TAG + t for t in ("str", "int", "float", "bool", "null")
)
MAP_TAG, SEQ_TAG, MERGE_TAG, _TIMESTAMP_TAG = (
    _TAG + t for t in ("map", "seq", "merge", "timestamp")
)
STRINGY_TAGS = frozenset({STR_TAG, _TIMESTAMP_TAG, _TAG + "value", _TAG + "yaml", MERGE_TAG})
_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def short_tag(tag: str) -> str:
    """`!!int` for YAML's `tag:yaml.org,2002:int`; any other tag as written."""
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


_RESOLVE_CACHE: dict[str, str] = {}


def resolve_plain(value: str) -> str:
    """The implicit tag of a plain scalar, as SafeLoader resolves it (cached by text)."""
    tag = _RESOLVE_CACHE.get(value)
    if tag is None:
        tag = STR_TAG
        for candidate, regexp in _IMPLICIT.get(value[:1], ()):
            if regexp.match(value):
                tag = candidate
                break
        if len(_RESOLVE_CACHE) > 100_000:
            _RESOLVE_CACHE.clear()
        _RESOLVE_CACHE[value] = tag
    return tag


SLOW_PATH: Any = object()
"""`plain_value`'s answer for a text the general builder must handle (merge key, bad value)."""
PLAIN_VALUES: dict[str, Any] = {}
"""plain text -> value, filled by `plain_value`; read directly by the reader's event loop."""


def plain_value(text: str) -> Any:
    """Value of a plain (unquoted, untagged) scalar, cached by its text."""
    tag = resolve_plain(text)
    if tag == MERGE_TAG:
        value: Any = SLOW_PATH
    elif tag in STRINGY_TAGS:
        value = text
    else:
        try:
            value = construct_scalar(tag, text)
        except ValueError:
            return SLOW_PATH  # not cached: the slow path reports it
    if len(PLAIN_VALUES) > 100_000:
        PLAIN_VALUES.clear()
    PLAIN_VALUES[text] = value
    return value


def construct_scalar(tag: str, value: str) -> Any:
    """Value of a core-schema scalar; ValueError when the text does not fit the tag."""
    node = yaml.ScalarNode(tag, value)
    try:
        if tag == INT_TAG:
            return _CONSTRUCTOR.construct_yaml_int(node)
        if tag == FLOAT_TAG:
            return _CONSTRUCTOR.construct_yaml_float(node)
        if tag == BOOL_TAG:
            return _CONSTRUCTOR.construct_yaml_bool(node)
    except (ValueError, KeyError, TypeError, IndexError):
        raise ValueError(value) from None
    if tag == NULL_TAG:
        if value not in ("", "~", "null", "Null", "NULL"):
            raise ValueError(value)
        return None
    raise ValueError(value)
