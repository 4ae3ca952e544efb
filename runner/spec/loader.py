"""YAML files -> typed spec documents with a source map: the first step of the flow.

`load_project(paths)` reads every `*.yaml`/`*.yml` under the given files or folders (recursive,
sorted, multi-document files included), validates each document against its kind's model and
indexes the valid ones into a `Project`. Nothing is raised for bad input: every finding becomes a
`Problem` at a 1-based `file:line:col`, and all problems from all files are returned together.

How a file is read (and why):

- libyaml's parser (the one behind `yaml.CSafeLoader`) produces the *event* stream; values are
  built from events here, in one non-recursive pass that records for every value its path ->
  Position (the value's start) and for every mapping key where the key was written. Composing
  nodes in C would be as fast but recurses on the C stack (a deeply nested file crashes the
  interpreter), so it is not used.
- Safe only: a tag outside YAML's core types (`!!python/object`, `!custom`, `!!set`) is an error
  at its position; timestamps stay strings. Duplicate keys are errors at the second key.
- Aliases are expanded by copying, and every node copied through an alias counts against
  `ALIAS_BUDGET` per document, so a "billion laughs" file stops after a few thousand nodes.
  Nesting deeper than `MAX_DEPTH` is refused, and flow brackets nested absurdly deep are refused
  before libyaml sees them (its flow parser is quadratic in the depth).
- A document with a YAML-level problem is not validated further, but its kind and name (when
  readable) are kept in `LoadResult.invalid` so reference checks do not pile up follow-on errors.

Invariants: file names are reported as the user gave them; no environment variable is read and
no `${VAR}` is resolved; pydantic errors are translated through the source map, never shown raw.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from runner.spec.models import KINDS, SUPPORTED_API_VERSIONS, address_of, parse_duration
from runner.spec.project import Path, Position, Problem, Project, SpecDocument

__all__ = [
    "ALIAS_BUDGET",
    "MAX_DEPTH",
    "FileResult",
    "LoadResult",
    "RawDocument",
    "build_project",
    "discover_files",
    "load_file",
    "load_project",
    "load_text",
    "parse_yaml",
    "validate_document",
]

ALIAS_BUDGET = 10_000
"""Nodes a document may copy through aliases before it is rejected."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and lists a document may use."""
_MAX_FLOW_BRACKETS = 1_000

_YAML_EXTENSIONS = (".yaml", ".yml")
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE, _TIMESTAMP = (_TAG + t for t in ("map", "seq", "merge", "timestamp"))
_STRINGY = frozenset({_STR, _TIMESTAMP, _TAG + "value", _TAG + "yaml", _MERGE})
_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
# libyaml's event parser: what `yaml.CSafeLoader` reads events with, without setting up the
# constructor and resolver it never uses here.
_Loader: Any = getattr(getattr(yaml, "_yaml", None), "CParser", None) or yaml.SafeLoader
_KIND_LIST = ", ".join(KINDS)
_DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class RawDocument:
    """One YAML document as plain Python values, before it is checked against its model."""

    file: str
    data: Any
    position: Position
    positions: dict[Path, Position]
    key_positions: dict[Path, tuple[int, int]]  # (line, column) of each mapping key
    sound: bool = True  # False when the YAML itself had a problem (duplicate key, bad tag, ...)


@dataclass
class FileResult:
    """What one file holds: valid documents, problems, and addresses of invalid documents."""

    file: str
    documents: list[SpecDocument] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)
    document_count: int = 0


@dataclass
class LoadResult:
    project: Project
    problems: list[Problem]
    files: list[str] = field(default_factory=list)
    invalid: frozenset[str] = frozenset()
    """Addresses of documents that exist but failed to load (references to them are not unknown)."""
    document_count: int = 0


# ---------------------------------------------------------------- YAML -> values + source map


class _Abort(Exception):
    """Stop building the current document (alias budget, depth, complex key)."""


_NO_KEY: Any = object()
_DISCARD: Any = object()
_MERGE_KEY: Any = object()


class _Frame:
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
        self.key: Any = _NO_KEY
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


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _copy(value: Any) -> Any:
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


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


def _flow_depth_problem(text: str, file: str) -> Problem | None:
    """libyaml's flow parser is quadratic in nesting depth: refuse absurd bracket nesting early."""
    if text.count("[") + text.count("{") <= _MAX_FLOW_BRACKETS:
        return None
    depth = 0
    for match in re.finditer(r"[\[\]{}]", text):
        if match.group() in "[{":
            depth += 1
            if depth > _MAX_FLOW_BRACKETS:
                offset = match.start()
                line = text.count("\n", 0, offset) + 1
                column = offset - (text.rfind("\n", 0, offset) + 1) + 1
                return Problem(
                    file,
                    line,
                    column,
                    "yaml.depth",
                    f"brackets nested more than {_MAX_FLOW_BRACKETS} deep; refusing to parse",
                )
        elif depth:
            depth -= 1
    return None


class _DocumentBuilder:
    """Builds the values of one YAML stream's documents from libyaml events.

    The event loop handles the common events (untagged, unanchored values inside a collection)
    inline; everything else goes through the general methods, which alone give the same result
    (`fast_paths = False`: the tests compare both).
    """

    fast_paths = True

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
            return (*frame.path, "<<") if key is _MERGE_KEY else (*frame.path, key)
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
        frame.key = _NO_KEY
        if key is _DISCARD:
            return
        if key is _MERGE_KEY:
            self._add_merge(frame, value, start)
            return
        frame.value[key] = value

    def _add_merge(self, frame: _Frame, value: Any, start: int) -> None:
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

    def _finish_map(self, frame: _Frame) -> None:
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

    # -- the event loop

    def build(self, text: str) -> list[RawDocument]:
        loader = _Loader(text)
        try:
            self._run(loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = exc.problem or exc.context or "invalid YAML"
            if exc.context and exc.problem:
                what = f"{exc.problem} ({exc.context})"
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            self.problems.append(Problem(self.file, line, column, "yaml.syntax", what))
        except yaml.YAMLError as exc:  # reader errors: bad characters or encoding
            position = getattr(exc, "position", None)
            line, column = _line_col(text, position) if isinstance(position, int) else (1, 1)
            reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
            self.problems.append(Problem(self.file, line, column, "yaml.syntax", str(reason)))
        finally:
            dispose = getattr(loader, "dispose", None)
            if dispose is not None:
                dispose()
        return self.documents

    def _start_document(self) -> None:
        self.stack: list[_Frame] = []
        self.entries: list[tuple[Path, Position]] = []
        self.keys: dict[Path, tuple[int, int]] = {}
        self.anchors: dict[str, _Anchor] = {}
        self.open_anchors: set[str] = set()
        self.expanded = 0
        self.sound = True
        self.root = None
        self.root_pos: Position | None = None

    def _run(self, loader: Any) -> None:
        get_event = loader.get_event
        scalar_event = yaml.ScalarEvent
        mapping_start = yaml.MappingStartEvent
        mapping_end = yaml.MappingEndEvent
        sequence_start = yaml.SequenceStartEvent
        sequence_end = yaml.SequenceEndEvent
        alias_event = yaml.AliasEvent
        document_start = yaml.DocumentStartEvent
        document_end = yaml.DocumentEndEvent
        stream_end = yaml.StreamEndEvent
        no_key, discard, merge_key = _NO_KEY, _DISCARD, _MERGE_KEY
        file = self.file
        plain = _PLAIN_VALUES
        position = Position
        frame_class = _Frame
        fast = self.fast_paths
        skipping = False
        self._start_document()
        # The current document's lists (replaced only by _start_document).
        stack = self.stack
        entries = self.entries
        keys = self.keys
        while True:
            event = get_event()
            kind = type(event)
            if kind is scalar_event:
                if skipping:
                    continue
                # Fast path (almost every event): a plain untagged scalar in a collection.
                if fast and event.tag is None and event.anchor is None and stack:
                    text = event.value
                    if event.implicit[0]:
                        value = plain.get(text, _MISSING)
                        if value is _MISSING:
                            value = _plain_value(text)
                    else:
                        value = text
                    if value is not _SLOW_PATH:
                        top = stack[-1]
                        mark = event.start_mark
                        if not top.is_map:
                            items = top.value
                            entries.append(
                                (
                                    (*top.path, len(items)),
                                    position(file, mark.line + 1, mark.column + 1),
                                )
                            )
                            items.append(value)
                            top.size += 1
                            continue
                        key = top.key
                        if key is no_key:
                            explicit = top.explicit
                            if value not in explicit:
                                here = (mark.line + 1, mark.column + 1)
                                explicit[value] = here
                                top.key = value
                                keys[(*top.path, value)] = here
                                continue
                        elif key is not discard and key is not merge_key:
                            entries.append(
                                ((*top.path, key), position(file, mark.line + 1, mark.column + 1))
                            )
                            top.value[key] = value
                            top.key = no_key
                            top.size += 1
                            continue
                self._scalar(event, file)
                continue
            if kind is mapping_start or kind is sequence_start:
                if skipping:
                    continue
                # Fast path: an untagged, unanchored collection as a mapping value or list item.
                if (
                    fast
                    and event.tag is None
                    and event.anchor is None
                    and 0 < len(stack) < MAX_DEPTH
                ):
                    top = stack[-1]
                    if top.is_map:
                        key = top.key
                        path = (
                            None
                            if key is no_key or key is discard or key is merge_key
                            else (*top.path, key)
                        )
                    else:
                        path = (*top.path, len(top.value))
                    if path is not None:
                        mark = event.start_mark
                        start = len(entries)
                        entries.append((path, position(file, mark.line + 1, mark.column + 1)))
                        stack.append(frame_class(kind is mapping_start, path, None, start))
                        continue
                try:
                    self._start_collection(event, is_map=kind is mapping_start)
                except _Abort:
                    skipping = self._abort()
                continue
            if kind is mapping_end or kind is sequence_end:
                if skipping:
                    continue
                frame = stack[-1]
                if fast and frame.anchor is None and not frame.merges and len(stack) > 1:
                    # Fast path: hand the finished collection to its parent collection.
                    top = stack[-2]
                    if not top.is_map:
                        stack.pop()
                        top.size += frame.size
                        top.value.append(frame.value)
                        continue
                    key = top.key
                    if key is not discard and key is not merge_key:
                        stack.pop()
                        top.size += frame.size
                        top.key = no_key
                        top.value[key] = frame.value
                        continue
                self._end_collection()
                continue
            if kind is document_start:
                self._start_document()
                stack = self.stack
                entries = self.entries
                keys = self.keys
                skipping = False
                continue
            if kind is document_end:
                if not skipping:
                    self._end_document()
                continue
            if kind is stream_end:
                return
            if skipping or kind is not alias_event:
                continue
            try:
                self._alias(event)
            except _Abort:
                skipping = self._abort()

    def _abort(self) -> bool:
        """Stop the current document after a problem (alias budget, depth, complex key)."""
        self.sound = False
        if self.stack:  # keep what was read: kind and name may still be known
            self.root = self.stack[0].value
        self._end_document()
        return True

    def _key_position_check(self, frame: _Frame, key: Any, mark: Any) -> None:
        here = (mark.line + 1, mark.column + 1)
        first = frame.explicit.get(key)
        if first is not None:
            self._problem(
                mark,
                "yaml.duplicate-key",
                f"duplicate key {key!r} (first written at line {first[0]}, column {first[1]})",
            )
            frame.key = _DISCARD
            return
        frame.explicit[key] = here
        frame.key = key
        self.keys[(*frame.path, key)] = here

    def _scalar(self, event: Any, file: str) -> None:
        value: Any = event.value
        tag = event.tag
        mark = event.start_mark
        if tag is None or tag == "!":
            tag = _resolve_plain(value) if event.implicit[0] and tag is None else _STR
        if tag in _STRINGY:
            pass
        elif tag in (_INT, _FLOAT, _BOOL, _NULL):
            try:
                value = _construct_scalar(tag, value)
            except ValueError:
                self._problem(mark, "yaml.tag", f"cannot read {value!r} as {_short_tag(tag)}")
                value = None
        else:
            self._problem(
                mark,
                "yaml.tag",
                f"unsupported tag {_short_tag(tag)!r}: only plain YAML values (strings, numbers, "
                "booleans, null, lists and mappings) are allowed",
            )
            value = None
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.is_map and frame.key is _NO_KEY:
            if tag == _MERGE and event.implicit[0]:
                frame.key = _MERGE_KEY
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

    def _start_collection(self, event: Any, *, is_map: bool) -> None:
        mark = event.start_mark
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.is_map and frame.key is _NO_KEY:
            self._problem(mark, "yaml.key", "a mapping key must be a plain value, not a collection")
            raise _Abort
        if len(self.stack) >= MAX_DEPTH:
            self._problem(mark, "yaml.depth", f"nesting deeper than {MAX_DEPTH} levels")
            raise _Abort
        tag = event.tag
        if tag is not None and tag != "!" and tag != (_MAP if is_map else _SEQ):
            self._problem(
                mark,
                "yaml.tag",
                f"unsupported tag {_short_tag(tag)!r}: only plain YAML values (strings, numbers, "
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
        self.stack.append(_Frame(is_map, path, anchor, start))

    def _end_collection(self) -> None:
        frame = self.stack.pop()
        if frame.is_map:
            self._finish_map(frame)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = _Anchor(
                frame.value, frame.path, frame.start, len(self.entries), frame.size
            )
        self._attach(frame.value, frame.size, frame.start)

    def _alias(self, event: Any) -> None:
        mark = event.start_mark
        name = event.anchor
        anchor = self.anchors.get(name)
        if anchor is None:
            if name in self.open_anchors:
                self._problem(mark, "yaml.alias", f"alias '*{name}' refers to itself")
            else:
                self._problem(mark, "yaml.alias", f"unknown alias '*{name}'")
            raise _Abort
        self.expanded += anchor.size
        if self.expanded > ALIAS_BUDGET:
            self._problem(
                mark,
                "yaml.alias-limit",
                f"aliases expand to more than {ALIAS_BUDGET} values; refusing to expand "
                f"'*{name}' (is this a 'billion laughs' file?)",
            )
            raise _Abort
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.is_map and frame.key is _NO_KEY:
            if type(anchor.value) in (dict, list):
                self._problem(mark, "yaml.key", "a mapping key must be a plain value")
                frame.key = _DISCARD
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

    def _end_document(self) -> None:
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


def _line_col(text: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def parse_yaml(text: str, *, file: str) -> tuple[list[RawDocument], list[Problem]]:
    """Every non-empty document of `text` as values plus source map, and the YAML problems."""
    problems: list[Problem] = []
    too_deep = _flow_depth_problem(text, file)
    if too_deep is not None:
        return [], [too_deep]
    documents = _DocumentBuilder(file, problems).build(text)
    return documents, problems


# ---------------------------------------------------------------- values -> models


def _dotted(path: Sequence[Any]) -> str:
    out = ""
    for item in path:
        if isinstance(item, int) and not isinstance(item, bool):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else str(item)
    return out


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
    if not isinstance(word, str):
        return ""
    close = _close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
    loc = tuple(item for item in error["loc"] if item != "[key]")
    kind: str = error["type"]
    where = _dotted(loc)
    prefix = f"{where}: " if where else ""
    position = _position_of(raw, loc)
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        parent = loc[:-1]
        message = f"missing required field {loc[-1]!r}"
        if parent:
            message = f"{_dotted(parent)}: {message}"
        return Problem.at(_position_of(raw, parent), "schema.missing", f"{label}: {message}")
    if kind == "extra_forbidden":
        name = loc[-1]
        parent = loc[:-1]
        hint = _suggest(name, _field_names(_model_at(model, parent)))
        message = f"unknown field {name!r}{hint}"
        if parent:
            message = f"{_dotted(parent)}: {message}"
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
        if ctx.get("pattern") == _DURATION_PATTERN and isinstance(value, str):
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


# ---------------------------------------------------------------- files and projects


def load_text(text: str, *, file: str) -> FileResult:
    """Parse and validate the documents of one file's text."""
    raws, problems = parse_yaml(text, file=file)
    result = FileResult(file=file, problems=problems, document_count=len(raws))
    for raw in raws:
        doc, doc_problems, address = validate_document(raw)
        result.problems.extend(doc_problems)
        if doc is not None:
            result.documents.append(doc)
        elif address is not None:
            result.invalid.add(address)
    return result


def load_file(path: str | os.PathLike[str]) -> FileResult:
    """Read one file (reported under the name as given) and load its documents."""
    file = os.fspath(path)
    try:
        with open(file, "rb", buffering=0) as handle:  # one read of the whole file: no buffer
            data = handle.readall()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return FileResult(file=file, problems=[Problem(file, 1, 1, "file.read", reason)])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            try:
                text = data.decode("utf-16")
            except UnicodeDecodeError:
                text = ""
            else:
                return load_text(text, file=file)
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return FileResult(
            file=file,
            problems=[
                Problem(
                    file,
                    line,
                    column,
                    "file.encoding",
                    f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                )
            ],
        )
    return load_text(text, file=file)


def discover_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[Problem]]:
    """YAML files under `paths`, each folder walked recursively in sorted order (hidden skipped).

    Names keep the form the user gave (`specs/teams/a.yaml` for `specs`); a path given twice,
    or a file inside a folder also given, is read once.
    """
    files: list[str] = []
    problems: list[Problem] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if len(paths) == 1:  # one folder cannot list a file twice
            files.append(name)
            return
        real = os.path.realpath(name)
        if real not in seen:
            seen.add(real)
            files.append(name)

    for given in paths:
        name = os.fspath(given)
        if os.path.isdir(name):
            found: list[tuple[tuple[str, ...], str]] = []
            for root, dirs, filenames in os.walk(name):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                rel = os.path.relpath(root, name)
                parts = () if rel == "." else tuple(rel.split(os.sep))
                for filename in filenames:
                    if filename.endswith(_YAML_EXTENSIONS) and not filename.startswith("."):
                        found.append(((*parts, filename), os.path.join(root, filename)))
            for _key, full in sorted(found):
                add(full)
        elif os.path.exists(name):
            add(name)
        else:
            problems.append(Problem(name, 1, 1, "file.read", "no such file or directory"))
    return files, problems


def build_project(documents: Iterable[SpecDocument]) -> tuple[Project, list[Problem]]:
    """Index documents by kind and name; a second document with a taken name is a problem."""
    project = Project()
    problems: list[Problem] = []
    for doc in documents:
        if not project.add(doc):
            first = project.document(doc.address)
            assert first is not None
            where = first.position_of(("name",))
            problems.append(
                Problem.at(
                    doc.position_of(("name",)),
                    "name.duplicate",
                    f"{doc.kind} {doc.spec.name!r} is already defined at {where}",
                )
            )
    return project, problems


def load_project(paths: Sequence[str | os.PathLike[str]]) -> LoadResult:
    """Load every YAML file under `paths` into a Project, with every problem found on the way."""
    files, problems = discover_files(paths)
    documents: list[SpecDocument] = []
    invalid: set[str] = set()
    count = 0
    for file in files:
        result = load_file(file)
        problems.extend(result.problems)
        documents.extend(result.documents)
        invalid |= result.invalid
        count += result.document_count
    project, duplicates = build_project(documents)
    problems.extend(duplicates)
    return LoadResult(
        project=project,
        problems=problems,
        files=files,
        invalid=frozenset(invalid - {doc.address for doc in project}),
        document_count=count,
    )


def _close_matches(word: str, candidates: list[str], *, n: int, cutoff: float) -> list[str]:
    """difflib.get_close_matches, imported only when a name is unknown (not on a valid run)."""
    import difflib

    return difflib.get_close_matches(word, candidates, n=n, cutoff=cutoff)
