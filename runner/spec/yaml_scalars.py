"""YAML core-schema scalars -> Python values, safe only: the reader's value step.

`yaml_reader` hands every scalar it reads here: `_resolve_plain` finds the implicit tag of a plain
(unquoted, untagged) scalar the way PyYAML's SafeLoader would, `_construct_scalar` builds the
value of a core tag (int, float, bool, null), and `_plain_value` does both for the hot path with
a cache keyed by the scalar's text.

Invariants: only YAML's core types are ever constructed (no `!!python/*`, no `!!set`);
timestamps, `!!value`, `!!yaml` and the merge key stay strings (`_STRINGY`); a text that does not
fit its tag raises ValueError from `_construct_scalar` and yields `_SLOW_PATH` from `_plain_value`
(never cached), so the reader reports it at its position. Both caches are bounded (cleared past
100,000 entries) and hold only immutable values.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__: list[str] = []

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE, _TIMESTAMP = (_TAG + t for t in ("map", "seq", "merge", "timestamp"))
_STRINGY = frozenset({_STR, _TIMESTAMP, _TAG + "value", _TAG + "yaml", _MERGE})
_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


_RESOLVE_CACHE: dict[str, str] = {}


def _resolve_plain(value: str) -> str:
    tag = _RESOLVE_CACHE.get(value)
    if tag is None:
        tag = _STR
        for candidate, regexp in _IMPLICIT.get(value[:1], ()):
            if regexp.match(value):
                tag = candidate
                break
        if len(_RESOLVE_CACHE) > 100_000:
            _RESOLVE_CACHE.clear()
        _RESOLVE_CACHE[value] = tag
    return tag


_MISSING: Any = object()
_SLOW_PATH: Any = object()
_PLAIN_VALUES: dict[str, Any] = {}


def _plain_value(text: str) -> Any:
    """Value of a plain (unquoted, untagged) scalar, cached by its text."""
    tag = _resolve_plain(text)
    if tag == _MERGE:
        value: Any = _SLOW_PATH
    elif tag in _STRINGY:
        value = text
    else:
        try:
            value = _construct_scalar(tag, text)
        except ValueError:
            return _SLOW_PATH  # not cached: the slow path reports it
    if len(_PLAIN_VALUES) > 100_000:
        _PLAIN_VALUES.clear()
    _PLAIN_VALUES[text] = value
    return value


def _construct_scalar(tag: str, value: str) -> Any:
    """Value of a core-schema scalar; ValueError when the text does not fit the tag."""
    node = yaml.ScalarNode(tag, value)
    try:
        if tag == _INT:
            return _CONSTRUCTOR.construct_yaml_int(node)
        if tag == _FLOAT:
            return _CONSTRUCTOR.construct_yaml_float(node)
        if tag == _BOOL:
            return _CONSTRUCTOR.construct_yaml_bool(node)
    except (ValueError, KeyError, TypeError, IndexError):
        raise ValueError(value) from None
    if tag == _NULL:
        if value not in ("", "~", "null", "Null", "NULL"):
            raise ValueError(value)
        return None
    raise ValueError(value)
