"""The general YAML value builder: one event at a time, values plus source map, limits enforced.

`EventBuilder` holds the state of the document being read (the stack of open collections as
`Frame`s, the path -> Position entries, key positions, anchors) and the general handling of every
kind of event (`scalar`, `start_collection`, `end_collection`, `alias`, `start_document`,
`end_document`). It is the reference semantics: `yaml_reader.DocumentBuilder` subclasses it with
the event loop, which inlines the common cases on the same frames (a key slot holds a key, or
`NO_KEY`, `DISCARD` or `MERGE_KEY`) and calls these methods for everything else. `RawDocument`
is what it produces for each document.

Invariants: every value gets an entry (path, Position of its start) in document order, and every
mapping key its (line, column); a duplicate key is a problem at the second key and its value is
dropped; merge keys (`<<`) add only keys not written explicitly, with their source positions;
aliases are expanded by copying, and each copied node counts against `ALIAS_BUDGET` per document;
nesting deeper than `MAX_DEPTH`, a collection or unknown alias as a mapping key, a self-referring
alias or a spent alias budget stops the document: the event method raises `DocumentAborted`
and the reader calls `abort()`, which ends the document with `sound=False`, keeping what was
read so far. Bad input never raises anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.spec.project import Path, Position, Problem
from runner.spec.yaml_scalars import (
    BOOL_TAG,
    FLOAT_TAG,
    INT_TAG,
    MAP_TAG,
    MERGE_TAG,
    NULL_TAG,
    SEQ_TAG,
    STR_TAG,
    STRINGY_TAGS,
    construct_scalar,
    resolve_plain,
    short_tag,
)

__all__ = [
    "ALIAS_BUDGET",
    "DISCARD",
    "MAX_DEPTH",
    "MERGE_KEY",
    "NO_KEY",
    "DocumentAborted",
    "EventBuilder",
    "Frame",
    "RawDocument",
]

ALIAS_BUDGET = 10_000
"""Nodes a document may copy through aliases before it is rejected."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and lists a document may use."""


@dataclass(frozen=True)
class RawDocument:
    """One YAML document as plain Python values, before it is checked against its model."""

    file: str
    data: Any
    position: Position
    positions: dict[Path, Position]
    key_positions: dict[Path, tuple[int, int]]  # (line, column) of each mapping key
    sound: bool = True  # False when the YAML itself had a problem (duplicate key, bad tag, ...)


class DocumentAborted(Exception):
    """Stop building the current document (alias budget, depth, complex key)."""


# What a mapping's key slot holds besides a key: no key read yet, a key whose value is dropped
# (a duplicate), the merge key `<<`.
NO_KEY: Any = object()
DISCARD: Any = object()
MERGE_KEY: Any = object()


class Frame:
    """One open mapping or list: its value so far, its path, and (for a mapping) its key slot."""

    __slots__ = (
        "anchor",
        "explicit",
        "is_map",
        "key",
        "key_pos",
        "merges",
        "path",
        "size",
        "start",
        "value",
    )

    def __init__(self, is_map: bool, path: Path, anchor: str | None, start: int) -> None:
        self.is_map = is_map
        self.value: Any = {} if is_map else []
        self.path = path
        self.anchor = anchor
        self.start = start
        self.key: Any = NO_KEY
        self.key_pos: Position | None = None
        self.size = 1
        self.merges: list[tuple[Any, int, int]] = []
        self.explicit: dict[Any, tuple[int, int]] = {}


class _Anchor:
    __slots__ = ("end", "path", "size", "start", "value")

    def __init__(self, value: Any, path: Path, start: int, end: int, size: int) -> None:
        self.value = value
        self.path = path
        self.start = start
        self.end = end
        self.size = size


def _copy(value: Any) -> Any:
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


class EventBuilder:
    """Builds the values of one YAML stream's documents, one libyaml event at a time."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        self.documents: list[RawDocument] = []
        self.root: Any = None

    # -- helpers

    def _pos(self, mark: Any) -> Position:
        return Position(self.file, mark.line + 1, mark.column + 1)

    def _problem(self, mark: Any, code: str, message: str) -> None:
        self.problems.append(Problem(self.file, mark.line + 1, mark.column + 1, code, message))
        self.sound = False

    def _child_path(self) -> Path:
        frame = self.stack[-1] if self.stack else None
        if frame is None:
            return ()
        if frame.is_map:
            key = frame.key
            return (*frame.path, "<<") if key is MERGE_KEY else (*frame.path, key)
        return (*frame.path, len(frame.value))

    def _attach(self, value: Any, size: int, start: int) -> None:
        """Hand a finished value to its parent (or make it the document root)."""
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        frame.size += size
        if not frame.is_map:
            frame.value.append(value)
            return
        key = frame.key
        frame.key = NO_KEY
        if key is DISCARD:
            return
        if key is MERGE_KEY:
            self._add_merge(frame, value, start)
            return
        frame.value[key] = value

    def _add_merge(self, frame: Frame, value: Any, start: int) -> None:
        sources = value if type(value) is list else [value]
        if not sources or any(type(s) is not dict for s in sources):
            assert frame.key_pos is not None
            self.problems.append(
                Problem.at(
                    frame.key_pos,
                    "yaml.merge",
                    "a merge key '<<' needs a mapping or a list of mappings",
                )
            )
            self.sound = False
            return
        frame.merges.append((value, start, len(self.entries)))

    def _finish_map(self, frame: Frame) -> None:
        result: dict[Any, Any] = frame.value
        if not frame.merges:
            return
        taken = set(result)
        base = len(frame.path) + 1
        for value, start, end in frame.merges:
            is_list = type(value) is list
            for index, source in enumerate(value if is_list else [value]):
                chosen = {k for k in source if k not in taken}
                for k in chosen:
                    result[k] = source[k]
                taken |= chosen
                skip = base + 1 if is_list else base
                for path, pos in self.entries[start:end]:
                    if len(path) > skip and (not is_list or path[base] == index):
                        rel = path[skip:]
                        if rel[0] in chosen:
                            self.entries.append((frame.path + rel, pos))

    def start_document(self) -> None:
        self.stack: list[Frame] = []
        self.entries: list[tuple[Path, Position]] = []
        self.keys: dict[Path, tuple[int, int]] = {}
        self.anchors: dict[str, _Anchor] = {}
        self.open_anchors: set[str] = set()
        self.expanded = 0
        self.sound = True
        self.root = None
        self.root_pos: Position | None = None

    def abort(self) -> bool:
        """Stop the current document after a problem (alias budget, depth, complex key)."""
        self.sound = False
        if self.stack:  # keep what was read: kind and name may still be known
            self.root = self.stack[0].value
        self.end_document()
        return True

    def _key_position_check(self, frame: Frame, key: Any, mark: Any) -> None:
        here = (mark.line + 1, mark.column + 1)
        first = frame.explicit.get(key)
        if first is not None:
            self._problem(
                mark,
                "yaml.duplicate-key",
                f"duplicate key {key!r} (first written at line {first[0]}, column {first[1]})",
            )
            frame.key = DISCARD
            return
        frame.explicit[key] = here
        frame.key = key
        self.keys[(*frame.path, key)] = here

    def scalar(self, event: Any, file: str) -> None:
        value: Any = event.value
        tag = event.tag
        mark = event.start_mark
        if tag is None or tag == "!":
            tag = resolve_plain(value) if event.implicit[0] and tag is None else STR_TAG
        if tag in STRINGY_TAGS:
            pass
        elif tag in (INT_TAG, FLOAT_TAG, BOOL_TAG, NULL_TAG):
            try:
                value = construct_scalar(tag, value)
            except ValueError:
                self._problem(mark, "yaml.tag", f"cannot read {value!r} as {short_tag(tag)}")
                value = None
        else:
            self._problem(
                mark,
                "yaml.tag",
                f"unsupported tag {short_tag(tag)!r}: only plain YAML values (strings, numbers, "
                "booleans, null, lists and mappings) are allowed",
            )
            value = None
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.is_map and frame.key is NO_KEY:
            if tag == MERGE_TAG and event.implicit[0]:
                frame.key = MERGE_KEY
                frame.key_pos = Position(file, mark.line + 1, mark.column + 1)
            else:
                self._key_position_check(frame, value, mark)
            if event.anchor is not None:
                here = len(self.entries)
                self.anchors[event.anchor] = _Anchor(value, (), here, here, 1)
            return
        path = self._child_path()
        pos = Position(file, mark.line + 1, mark.column + 1)
        start = len(self.entries)
        self.entries.append((path, pos))
        if frame is None:
            self.root_pos = pos
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchor(value, path, start, start + 1, 1)
        self._attach(value, 1, start)

    def start_collection(self, event: Any, *, is_map: bool) -> None:
        mark = event.start_mark
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.is_map and frame.key is NO_KEY:
            self._problem(mark, "yaml.key", "a mapping key must be a plain value, not a collection")
            raise DocumentAborted
        if len(self.stack) >= MAX_DEPTH:
            self._problem(mark, "yaml.depth", f"nesting deeper than {MAX_DEPTH} levels")
            raise DocumentAborted
        tag = event.tag
        if tag is not None and tag != "!" and tag != (MAP_TAG if is_map else SEQ_TAG):
            self._problem(
                mark,
                "yaml.tag",
                f"unsupported tag {short_tag(tag)!r}: only plain YAML values (strings, numbers, "
                "booleans, null, lists and mappings) are allowed",
            )
        path = self._child_path()
        pos = Position(self.file, mark.line + 1, mark.column + 1)
        start = len(self.entries)
        self.entries.append((path, pos))
        if frame is None:
            self.root_pos = pos
        anchor = event.anchor
        if anchor is not None:
            self.open_anchors.add(anchor)
        self.stack.append(Frame(is_map, path, anchor, start))

    def end_collection(self) -> None:
        frame = self.stack.pop()
        if frame.is_map:
            self._finish_map(frame)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = _Anchor(
                frame.value, frame.path, frame.start, len(self.entries), frame.size
            )
        self._attach(frame.value, frame.size, frame.start)

    def alias(self, event: Any) -> None:
        mark = event.start_mark
        name = event.anchor
        anchor = self.anchors.get(name)
        if anchor is None:
            if name in self.open_anchors:
                self._problem(mark, "yaml.alias", f"alias '*{name}' refers to itself")
            else:
                self._problem(mark, "yaml.alias", f"unknown alias '*{name}'")
            raise DocumentAborted
        self.expanded += anchor.size
        if self.expanded > ALIAS_BUDGET:
            self._problem(
                mark,
                "yaml.alias-limit",
                f"aliases expand to more than {ALIAS_BUDGET} values; refusing to expand "
                f"'*{name}' (is this a 'billion laughs' file?)",
            )
            raise DocumentAborted
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.is_map and frame.key is NO_KEY:
            if type(anchor.value) in (dict, list):
                self._problem(mark, "yaml.key", "a mapping key must be a plain value")
                frame.key = DISCARD
            else:
                self._key_position_check(frame, anchor.value, mark)
            return
        path = self._child_path()
        start = len(self.entries)
        cut = len(anchor.path)
        # The alias itself is where its value "is written"; the values inside keep their spots.
        self.entries.append((path, self._pos(mark)))
        self.entries.extend(
            (path + p[cut:], pos) for p, pos in self.entries[anchor.start + 1 : anchor.end]
        )
        if frame is None:
            self.root_pos = self._pos(mark)
        self._attach(_copy(anchor.value), anchor.size, start)

    def end_document(self) -> None:
        root = self.root
        if root is None and self.sound:
            return  # an empty document (a lone `---` or only comments)
        position = self.root_pos or Position(self.file, 1, 1)
        self.documents.append(
            RawDocument(
                file=self.file,
                data=root,
                position=position,
                positions=dict(self.entries),
                key_positions=self.keys,
                sound=self.sound,
            )
        )
        self.root = None
