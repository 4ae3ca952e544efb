"""Splitting a text into what the agent version holds and what each session fills in.

Role in the flow: `runner.spec.render` asks `split_text` for every text of an agent that has
session-time values (declared preferences or features, or `vars` a Workspace overrides). The
text's top-level pieces that read one of them (`{{ prefs.x }}`, `{% if features.y %}...{% endif
%}`, `{{ vars.company }}` when a workspace sets `company`) are cut out and replaced by a
*sentinel* (`slot_sentinel`); the rest renders as before, once per environment, into the agent
version. After rendering, each sentinel becomes a Foundry structured-input placeholder
`{{name}}`: the preference's own name for a plain `{{ prefs.x }}`, else a computed input
`runner_<hash>` whose value is the cut-out piece rendered for the session
(`runner.spec.render_session`).

A *piece* is a top-level element of the text: one `{{ ... }}`, or one statement `{% ... %}` with
everything up to its matching `{% end... %}`. The cut keeps Jinja's whitespace rules exact: a
block piece takes the blanks before it on its line (`lstrip_blocks`) and the newline after its
last tag (`trim_blocks`), `-` markers take every blank on their side, so the version's text with
a piece's value put back reads as the whole text rendered for that session.

Invariants: pure and cached by (text, session names); no jinja2 here (the scanner reads only the
outer structure: tags, string literals, comments, raw blocks). A text the scanner cannot read
(an unbalanced block, an unknown statement, a carriage return, a NUL) that reads session values
is cut whole: one piece, tidied like any text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

from runner.spec.models import RESERVED_INPUT_PREFIX
from runner.spec.render_resolve import RenderError

__all__ = [
    "SESSION_ROOTS",
    "Cut",
    "SplitText",
    "derived_name",
    "slot_sentinel",
    "split_text",
    "unslot",
]

SESSION_ROOTS = ("prefs", "features")
"""Template variables whose values belong to the session, never to the agent version."""

_BLOCKS = frozenset({"if", "for", "macro", "call", "filter", "with", "autoescape", "block"})
_INNER = frozenset({"elif", "else"})
_SINGLE = frozenset({"set", "import", "from", "include", "extends", "do", "break", "continue"})
_DEFINING = frozenset({"set", "import", "from", "macro"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROOT = re.compile(r"(?<![\w.])(prefs|features|vars)\b\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*))?")
_DIRECT = re.compile(r"^\{\{ *prefs\.([a-z][a-z0-9_]*) *\}\}$")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_SENTINEL = re.compile("\x00(\\d+)\x00")


def slot_sentinel(index: int) -> str:
    """The mark standing for slot `index` while a text renders (plain data to Jinja)."""
    return f"\x00{index}\x00"


def unslot(text: str, names: list[str]) -> str:
    """`text` with every sentinel replaced by the placeholder `{{name}}` of its slot."""
    if "\x00" not in text:
        return text
    return _SENTINEL.sub(lambda m: "{{" + names[int(m.group(1))] + "}}", text)


def derived_name(source: str) -> str:
    """The structured input computed from a cut-out piece: stable, named by its text."""
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:10]
    return f"{RESERVED_INPUT_PREFIX}{digest}"


@dataclass(frozen=True)
class Cut:
    """A piece cut out of a text: its source (after the definitions before it that it may use,
    `prelude_lines` lines of them), the line of the text it starts on, the preference a plain
    `{{ prefs.x }}` shows, and whether it is the whole text (then its value is tidied)."""

    source: str
    line: int
    prelude_lines: int
    direct: str | None  # the preference a plain `{{ prefs.x }}` shows
    whole: bool


@dataclass(frozen=True)
class SplitText:
    """A text as the agent version renders it (`definition`, with `slot_sentinel(i)` where cut
    `i` was), the cuts, and the preference and feature names it reads."""

    definition: str
    cuts: tuple[Cut, ...]
    prefs: frozenset[str]
    features: frozenset[str]


@dataclass(frozen=True)
class _Element:
    start: int
    end: int
    line: int
    tags: str  # the tag texts, string literals blanked
    first: str  # the statement name of a `{%` element, "" for `{{`
    plain: str  # the element as written (no whitespace cuts)


class _Unreadable(Exception):
    pass


def split_text(source: str, overlaid: Collection[str]) -> SplitText | None:
    """`source` cut into its version text and session pieces; None when it reads no
    session value (`prefs`, `features`, or `vars.<key>` with `key` in `overlaid`)."""
    return _split(source, frozenset(overlaid))


@lru_cache(maxsize=4096)
def _split(source: str, overlaid: frozenset[str]) -> SplitText | None:
    if not any(root in source for root in SESSION_ROOTS) and not (overlaid and "vars" in source):
        return None
    try:
        if "\r" in source or "\x00" in source:
            raise _Unreadable
        elements = _scan(source)
    except _Unreadable:
        return _whole(source, overlaid)
    out: list[str] = []
    cuts: list[Cut] = []
    prelude: list[str] = []
    prefs: set[str] = set()
    features: set[str] = set()
    at = 0
    for element in elements:
        reads, named_prefs, named_features = _reads(element.tags, overlaid)
        prefs |= named_prefs
        features |= named_features
        if not reads:
            if element.first in _DEFINING:
                prelude.append(element.plain + "\n")  # trim_blocks drops the newline
            continue
        if element.first in _DEFINING:
            _refuse_defining(element)
        start, end = _widen(source, element)
        out.append(source[at:start])
        out.append(slot_sentinel(len(cuts)))
        direct = _DIRECT.match(element.plain)
        head = "".join(prelude)
        cuts.append(
            Cut(
                source=head + source[start:end],
                line=source.count("\n", 0, start) + 1,
                prelude_lines=head.count("\n"),
                direct=direct.group(1) if direct else None,
                whole=False,
            )
        )
        at = end
    if not cuts:
        return None
    out.append(source[at:])
    return SplitText("".join(out), tuple(cuts), frozenset(prefs), frozenset(features))


def _refuse_defining(element: _Element) -> None:
    """A `{% set %}`, `{% macro %}` or import that reads session values: the rest of the text,
    rendered into the agent version, could not see what it defines. The caller names where."""
    raise RenderError(
        f"{{% {element.first} %}} reads a session value (prefs, features or a workspace's "
        "vars): what it defines would not exist in the agent version; use the session value "
        "directly where the text needs it, or inside one {% if %}/{% for %} block",
        address="",
        line=element.line,
    )


def _whole(source: str, overlaid: frozenset[str]) -> SplitText | None:
    reads, prefs, features = _reads(_blank_strings(source), overlaid)
    if not reads:
        return None
    cut = Cut(source=source, line=1, prelude_lines=0, direct=None, whole=True)
    return SplitText(slot_sentinel(0), (cut,), frozenset(prefs), frozenset(features))


def _reads(tags: str, overlaid: frozenset[str]) -> tuple[bool, set[str], set[str]]:
    """(reads a session value, preference names, feature names) of some tag text."""
    reads = False
    prefs: set[str] = set()
    features: set[str] = set()
    for match in _ROOT.finditer(tags):
        root, attr = match.group(1), match.group(2)
        if root == "vars":
            if overlaid and (attr is None or attr in overlaid):
                reads = True
            continue
        reads = True
        if attr is not None:
            (prefs if root == "prefs" else features).add(attr)
    return reads, prefs, features


def _widen(source: str, element: _Element) -> tuple[int, int]:
    """The span Jinja's whitespace rules give the element (see the module docstring)."""
    start, end = element.start, element.end
    opener = source[start + 2 : start + 3]
    closer = source[end - 3 : end - 2]
    if opener == "-":
        while start and source[start - 1].isspace():
            start -= 1
    elif element.first and opener != "+":
        line_start = source.rfind("\n", 0, start) + 1
        if source[line_start:start].strip(" \t") == "":
            start = line_start
    if closer == "-":
        while end < len(source) and source[end].isspace():
            end += 1
    elif element.first and closer != "+" and source.startswith("\n", end):
        end += 1
    return start, end


def _blank_strings(text: str) -> str:
    return re.sub(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'", '""', text)


def _tag_end(source: str, at: int, closing: str) -> int:
    """The index just past the tag that starts at `at`, skipping string literals."""
    i = at + 2
    n = len(source)
    while i < n:
        c = source[i]
        if c in "\"'":
            j = i + 1
            while j < n and source[j] != c:
                j += 2 if source[j] == "\\" else 1
            if j >= n:
                raise _Unreadable
            i = j + 1
            continue
        if source.startswith(closing, i):
            return i + 2
        i += 1
    raise _Unreadable


def _scan(source: str) -> list[_Element]:
    """The top-level elements of `source`, in order; _Unreadable when it is not plain Jinja."""
    elements: list[_Element] = []
    depth = 0
    opened: tuple[int, str] | None = None  # (start, statement) of the open top-level block
    tags: list[str] = []
    at = 0
    while True:
        i = source.find("{", at)
        if i < 0 or i + 1 >= len(source):
            break
        kind = source[i + 1]
        if kind == "#":
            end = source.find("#}", i + 2)
            if end < 0:
                raise _Unreadable
            at = end + 2
            continue
        if kind not in "{%":
            at = i + 1
            continue
        end = _tag_end(source, i, "}}" if kind == "{" else "%}")
        inner = _blank_strings(source[i + 2 : end - 2].strip("-+ \t\n"))
        if kind == "{":
            if depth == 0:
                line = source.count("\n", 0, i) + 1
                elements.append(_Element(i, end, line, inner, "", source[i:end]))
            else:
                tags.append(inner)
            at = end
            continue
        word = _NAME.match(inner)
        statement = word.group(0) if word else ""
        if statement == "raw":
            raw_end = _RAW_END.search(source, end)
            if raw_end is None:
                raise _Unreadable
            end = raw_end.end()
            if depth == 0:
                line = source.count("\n", 0, i) + 1
                elements.append(_Element(i, end, line, "", "raw", source[i:end]))
            at = end
            continue
        opens = statement in _BLOCKS or (statement == "set" and "=" not in inner)
        if opens:
            if depth == 0:
                opened = (i, statement)
                tags = []
            depth += 1
            tags.append(inner)
        elif statement.startswith("end") and statement[3:] in (*_BLOCKS, "set"):
            depth -= 1
            if depth < 0 or opened is None:
                raise _Unreadable
            tags.append(inner)
            if depth == 0:
                start, first = opened
                line = source.count("\n", 0, start) + 1
                elements.append(
                    _Element(start, end, line, " ".join(tags), first, source[start:end])
                )
                opened = None
        elif statement in _INNER and depth > 0:
            tags.append(inner)
        elif statement in _SINGLE:
            if depth == 0:
                line = source.count("\n", 0, i) + 1
                elements.append(_Element(i, end, line, inner, statement, source[i:end]))
            else:
                tags.append(inner)
        else:
            raise _Unreadable
        at = end
    if depth != 0:
        raise _Unreadable
    return elements
