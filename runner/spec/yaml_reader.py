"""YAML text -> plain values plus a source map, within safety limits: `parse_yaml`.

The reading half of `runner.spec.loader`: each non-empty document of a file becomes a
`RawDocument` (values, the position of every value by path, the position of every mapping key),
and every YAML-level problem a `Problem` at a 1-based `file:line:col`. `load_documents` then
checks the values against their models.

How a file is read (and why):

- libyaml's parser (the one behind `yaml.CSafeLoader`) produces the *event* stream; values are
  built from events here, in one non-recursive pass that records for every value its path ->
  Position (the value's start) and for every mapping key where the key was written. Composing
  nodes in C would be as fast but recurses on the C stack (a deeply nested file crashes the
  interpreter), so it is not used.
- Safe only: a tag outside YAML's core types (`!!python/object`, `!custom`, `!!set`) is an error
  at its position; timestamps stay strings (see `yaml_scalars`). Duplicate keys are errors at the
  second key.
- Aliases are expanded by copying, and every node copied through an alias counts against
  `ALIAS_BUDGET` per document, so a "billion laughs" file stops after a few thousand nodes.
  Nesting deeper than `MAX_DEPTH` is refused (see `yaml_builder`), and flow brackets nested
  absurdly deep are refused here before libyaml sees them (its flow parser is quadratic in the
  depth).
- A document with a YAML-level problem is kept with `sound=False` (what could be read of it), so
  its kind and name can still be noted without validating it further.

Invariants: nothing is raised for bad input (libyaml's syntax and reader errors become
`yaml.syntax` problems); the event loop's inline fast paths give exactly the result of the
general `yaml_builder.EventBuilder` methods (`DocumentBuilder.fast_paths = False`: the tests compare
both), and the loop reads only locals and module globals: no extra calls per common event.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from runner.spec.project import Position, Problem
from runner.spec.yaml_builder import (
    DISCARD,
    MAX_DEPTH,
    MERGE_KEY,
    NO_KEY,
    DocumentAborted,
    EventBuilder,
    Frame,
    RawDocument,
)
from runner.spec.yaml_scalars import PLAIN_VALUES, SLOW_PATH, plain_value

__all__ = ["DocumentBuilder", "parse_yaml"]

_MISSING: Any = object()  # not in the plain-value cache

_MAX_FLOW_BRACKETS = 1_000
# libyaml's event parser: what `yaml.CSafeLoader` reads events with, without setting up the
# constructor and resolver it never uses here.
_Loader: Any = getattr(getattr(yaml, "_yaml", None), "CParser", None) or yaml.SafeLoader


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


class DocumentBuilder(EventBuilder):
    """Builds the values of one YAML stream's documents from libyaml events.

    The event loop handles the common events (untagged, unanchored values inside a collection)
    inline; everything else goes through the general `EventBuilder` methods, which alone give the
    same result (`fast_paths = False`: the tests compare both).
    """

    fast_paths = True

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
            what = _explain(exc, text, what)
            if "maximum nesting depth" in what:
                # libyaml >= 0.2.5 (PyYAML 6.0.4's wheels) has a nesting limit of its own: it is
                # the same mistake as ours, reported once as `yaml.depth`.
                if not any(p.code == "yaml.depth" for p in self.problems):
                    self.problems.append(
                        Problem(self.file, line, column, "yaml.depth", f"nesting too deep: {what}")
                    )
            else:
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
        no_key, discard, merge_key = NO_KEY, DISCARD, MERGE_KEY
        file = self.file
        plain = PLAIN_VALUES
        position = Position
        frame_class = Frame
        fast = self.fast_paths
        skipping = False
        self.start_document()
        # The current document's lists (replaced only by start_document).
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
                            value = plain_value(text)
                    else:
                        value = text
                    if value is not SLOW_PATH:
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
                self.scalar(event, file)
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
                    self.start_collection(event, is_map=kind is mapping_start)
                except DocumentAborted:
                    skipping = self.abort()
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
                self.end_collection()
                continue
            if kind is document_start:
                self.start_document()
                stack = self.stack
                entries = self.entries
                keys = self.keys
                skipping = False
                continue
            if kind is document_end:
                if not skipping:
                    self.end_document()
                continue
            if kind is stream_end:
                return
            if skipping or kind is not alias_event:
                continue
            try:
                self.alias(event)
            except DocumentAborted:
                skipping = self.abort()


def _explain(exc: yaml.MarkedYAMLError, text: str, what: str) -> str:
    """libyaml's message, said in the user's terms where it is cryptic: a tab where YAML wants
    spaces, and where an unclosed bracket or quote was opened."""
    mark = exc.problem_mark
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        return "a tab character: YAML indents with spaces only; replace the tab with spaces"
    opened = exc.context_mark
    if exc.context and opened is not None and exc.context.startswith("while parsing a flow"):
        at = f"line {opened.line + 1}, column {opened.column + 1}"
        return f"{exc.problem} ({exc.context} opened at {at})"
    return what


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
    documents = DocumentBuilder(file, problems).build(text)
    return documents, problems
