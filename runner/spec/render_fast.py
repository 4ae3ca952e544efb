"""The no-Jinja fast paths: plain texts and simple substitutions, and the tidying of output.

Role in the flow: `runner.spec.render_jinja.compile_text` parses each text with `simple_parts`; a
text it accepts is rendered by `render_parts` over the plain `values` of the render, without
building (or importing) Jinja. Every rendered text is then tidied by `tidy_quick`/`tidy`.

Invariants:
  - The fast path renders exactly what Jinja renders for the same text and variables, or gives
    up (`simple_parts`/`render_parts` return None, `_lookup` returns `_ABSENT`) so that Jinja
    renders it or raises the error it always raised. It never raises a template error itself.
  - `tidy_quick(text) == tidy(text)` for every text: lines carry no trailing whitespace, runs
    of blank lines collapse to one, no leading or trailing blank lines.
  - No jinja2 import here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Part", "render_parts", "simple_parts", "tidy", "tidy_quick"]

# A "simple" text is plain data, `{{ name.attr... }}` / `{{ name.attr | default('text') }}`
# substitutions and `{% if name.attr... %}` blocks (optionally `== 'text'` / `!= 'text'`, one
# optional `{% else %}`, not nested) holding data and substitutions. It is rendered here with
# exactly Jinja's semantics for that subset (the lexer's `trim_blocks`/`lstrip_blocks` handling of
# block tags; a name from the context, each attribute looked up as the sandbox does: a real
# attribute first, then the mapping's key; Python's `==`, `!=` and truth; `str()` of a scalar
# value) and handed to Jinja whenever anything is off the simple path (an attribute of the object
# itself or one starting with '_', a missing value, a non-mapping, a value that is not a plain
# scalar): Jinja then renders it or raises the error it always raised.
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAMES = r"(" + _IDENT + r"(?:\." + _IDENT + r")*)"
_LITERAL = r"(?:\"([^\"\\\n{}%]*)\"|'([^'\\\n{}%]*)')"
_SIMPLE_TAG = re.compile(
    r"\{\{ *" + _NAMES + r" *"
    r"(?:\| *default\( *(?:\"([^\"\\\n{}]*)\"|'([^'\\\n{}]*)') *\) *)?\}\}"
)
_IF_TAG = re.compile(r"\{% *if +" + _NAMES + r" *(?:(==|!=) *" + _LITERAL + r" *)?%\}")
_ELSE_TAG = re.compile(r"\{% *else *%\}")
_ENDIF_TAG = re.compile(r"\{% *endif *%\}")
_TAG_START = re.compile(r"\{[{%#]")
_LSTRIP = re.compile(r"\s+")  # Jinja's lexer: what lstrip_blocks removes before a block tag
_NO_DEFAULT: Any = object()
_ABSENT: Any = object()
# Values the fast path prints or tests; anything else (a list, a mapping, a tuple, a subclass)
# goes to Jinja, which prints the `_Named` view of it.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_TESTABLE = _SCALARS | {dict, list}


class _If:
    """`{% if names [op literal] %}body{% else %}orelse{% endif %}` of a simple text."""

    __slots__ = ("body", "literal", "names", "op", "orelse")

    def __init__(self, names: tuple[str, ...], op: str | None, literal: str | None) -> None:
        self.names = names
        self.op = op
        self.literal = literal
        self.body: list[Part] = []
        self.orelse: list[Part] | None = None


Part = str | tuple[tuple[str, ...], Any] | _If


_DICT_ATTRIBUTES = frozenset(dir(dict))


def _plain_names(dotted: str) -> tuple[str, ...] | None:
    """`a.b.c` as names, or None when an attribute is one a mapping has (`items`) or starts with
    '_': the sandbox would find it on the object (or refuse it), never as a key; Jinja decides."""
    names = tuple(dotted.split("."))
    for attr in names[1:]:
        if attr[0] == "_" or attr in _DICT_ATTRIBUTES:
            return None
    return names


def simple_parts(source: str) -> tuple[Part, ...] | None:
    """`source` as data, simple substitutions and simple ifs, or None when Jinja must handle it."""
    if "\r" in source:
        return None  # Jinja normalises newlines in data, not in values: let it do so
    if source.endswith("\n"):
        source = source[:-1]  # keep_trailing_newline=False
    parts: list[Part] = []
    target = parts
    block: _If | None = None
    at = 0
    line_starting = True  # the lexer's: the previous token ended a line
    while True:
        mark = _TAG_START.search(source, at)
        if mark is None:
            break
        start = mark.start()
        data = source[at:start]
        if at and data.startswith("}"):
            return None
        kind = source[start + 1]
        if kind == "{":
            match = _SIMPLE_TAG.match(source, start)
            if match is None:
                return None
            if data:
                target.append(data)
            names = _plain_names(match.group(1))
            if names is None:
                return None
            double, single = match.group(2), match.group(3)
            default = double if double is not None else single
            target.append((names, _NO_DEFAULT if default is None else default))
            at = match.end()
            line_starting = False
            continue
        if kind == "#":
            return None
        # A block tag: lstrip_blocks drops the blanks between the line start and the tag.
        if data:
            line_at = data.rfind("\n") + 1
            if (line_at or line_starting) and _LSTRIP.fullmatch(data, line_at):
                data = data[:line_at]
            if data:
                target.append(data)
        match = _IF_TAG.match(source, start)
        if match is not None:
            if block is not None:
                return None  # nested
            names = _plain_names(match.group(1))
            if names is None:
                return None
            double, single = match.group(3), match.group(4)
            block = _If(names, match.group(2), double if double is not None else single)
            target = block.body
        elif (match := _ELSE_TAG.match(source, start)) is not None:
            if block is None or block.orelse is not None:
                return None
            block.orelse = target = []
        elif (match := _ENDIF_TAG.match(source, start)) is not None:
            if block is None:
                return None
            parts.append(block)
            block = None
            target = parts
        else:
            return None
        at = match.end()
        # trim_blocks: the first newline after a block tag goes.
        line_starting = source.startswith("\n", at)
        if line_starting:
            at += 1
    if block is not None:
        return None
    data = source[at:]
    if at and data.startswith("}"):
        return None
    if data:
        parts.append(data)
    return tuple(parts)


def _lookup(names: tuple[str, ...], default: Any, context: Mapping[str, Any]) -> Any:
    """The value of `name.attr...` as the sandbox finds it, or _ABSENT when Jinja must decide.

    `simple_parts` keeps no path with an attribute a mapping has (`items`) or one starting with
    '_' (`_runner_name` is one of a `_Named` view): on a plain dict each attribute is its key."""
    value = context.get(names[0], _ABSENT)
    last = len(names) - 1
    i = 0
    while i < last:
        if value is _ABSENT:
            return _ABSENT
        i += 1
        attr = names[i]
        if type(value) is not dict and (not isinstance(value, dict) or hasattr(value, attr)):
            return _ABSENT
        found = value.get(attr, _ABSENT)
        if found is _ABSENT:
            return default if i == last and default is not _NO_DEFAULT else _ABSENT
        value = found
    return value


def render_parts(parts: Sequence[Part], context: Mapping[str, Any]) -> str | None:
    """The text `parts` render to over `context`, or None when Jinja must render it."""
    out: list[str] = []
    for part in parts:
        kind = type(part)
        if kind is str:
            out.append(part)  # type: ignore[arg-type]
        elif kind is tuple:
            value = _lookup(part[0], part[1], context)  # type: ignore[arg-type,index]
            kind = type(value)
            if kind is str:
                out.append(value)
            elif kind in _SCALARS:
                out.append(str(value))
            else:
                return None
        else:
            block: _If = part  # type: ignore[assignment]
            value = _lookup(block.names, _NO_DEFAULT, context)
            if value is _ABSENT or type(value) not in _TESTABLE:
                return None
            op = block.op
            if op is None:
                chosen = block.body if value else block.orelse
            elif op == "==":
                chosen = block.body if value == block.literal else block.orelse
            else:
                chosen = block.body if value != block.literal else block.orelse
            if chosen:
                text = render_parts(chosen, context)
                if text is None:
                    return None
                out.append(text)
    return "".join(out)


_BLANK_RUNS = re.compile(r"\n{3,}")


def tidy(text: str) -> str:
    """No trailing blanks on a line, no runs of blank lines, no leading or trailing blank line."""
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


_ASCII_BLANKS = frozenset(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")  # str.isspace() in ASCII


def tidy_quick(text: str) -> str:
    """`tidy(text)`, without the work when an ASCII text is already tidy (once its trailing
    newlines are gone): no line break but the newline (nor any other control blank), no blank
    ending a line or the text, no three newlines in a row, no newline starting the text."""
    if not text.isascii():
        return tidy(text)
    if text[-1:] == "\n":
        text = text.rstrip("\n")  # trailing newlines only end in blank lines, which tidy drops
    if not text:
        return text
    if (
        text[-1] in _ASCII_BLANKS
        or "\r" in text
        or "\x0b" in text
        or "\x0c" in text
        or "\x1c" in text
        or "\x1d" in text
        or "\x1e" in text
        or "\x1f" in text
    ):
        return tidy(text)
    if "\n" in text and (text[0] == "\n" or " \n" in text or "\t\n" in text or "\n\n\n" in text):
        return tidy(text)
    return text
