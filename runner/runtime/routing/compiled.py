"""Compiling one member's handoff triggers into the tables `TriggerMatcher` queries.

Role: the compile half of trigger matching, run once per team revision (`MatcherCache`).
`TriggerIndex(triggers)` turns the active triggers into detectors and lookup tables:

  - every distinct keyword/phrase is one detector (`keyword_units` / `requested_units`), with
    its literal-first regex (`det_regex`), its words (`det_words`; `det_simple` when the one
    word is the whole detector, so its presence is a match), the triggers using it
    (`det_uses`), its best trigger rank (`det_best`) and its place in trie order (`det_dfs`:
    longest first, for reporting ties);
  - every distinct pattern is one `PatternDetector` with its prefilters (`required_literals`,
    `pattern_tokens` from `token_requirement`);
  - `vocabulary` holds every word the detectors and pattern token requirements need;
    `key_index` maps a word to the detectors keyed on it (each on its longest word),
    `wordless` lists detectors without a word;
  - triggers are ranked once by (priority, declaration order) (`by_rank`); `lazy` lists, in
    rank order, the triggers that hold without a keyword/phrase (a pattern or `turns_above`),
    split for ASCII texts into `lazy_open` (always visited) and `gate` (visited only when one
    of the pattern's required words is present). Patterns are compiled by RE2
    (`runner.spec.patterns.compile_pattern`): a search is linear in the message.

Invariant: an index is immutable after construction; nothing here runs per message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from runner.runtime.routing.prefilter import PatternDetector, required_literals, token_requirement
from runner.runtime.routing.text import (
    Vocabulary,
    detector_regex,
    keyword_units,
    requested_units,
    unit_words,
)
from runner.spec.models import HandoffTrigger
from runner.spec.patterns import compile_pattern

__all__ = ["DetectorKind", "LazyEntry", "TriggerIndex"]

DetectorKind = Literal["keywords", "requested", "pattern", "turns_above"]
LazyEntry = tuple[int, int, int, int | None]  # rank, trigger, pattern (-1: none), turns_above

_LEAF = "\U0010ffff\U0010ffff"  # sorts after every unit: a detector after its own extensions


class TriggerIndex:
    """The compiled tables of one member's triggers (see the module docstring)."""

    __slots__ = (
        "by_rank",
        "det_best",
        "det_dfs",
        "det_regex",
        "det_simple",
        "det_uses",
        "det_words",
        "gate",
        "key_index",
        "lazy",
        "lazy_open",
        "pattern_tokens",
        "patterns",
        "trig_dets",
        "trig_pattern",
        "triggers",
        "turns",
        "vocabulary",
        "wordless",
    )

    def __init__(self, triggers: Sequence[HandoffTrigger]) -> None:
        self.triggers: tuple[HandoffTrigger, ...] = tuple(triggers)
        n = len(self.triggers)
        active = [i for i, t in enumerate(self.triggers) if t.active]
        by_rank = sorted(active, key=lambda i: (self.triggers[i].priority, i))
        rank = {t: r for r, t in enumerate(by_rank)}
        self.by_rank: tuple[int, ...] = tuple(by_rank)
        det_index: dict[tuple[str, ...], int] = {}
        det_uses: list[list[tuple[int, DetectorKind]]] = []
        trig_dets: list[list[tuple[int, DetectorKind]]] = [[] for _ in range(n)]
        patterns: dict[str, list[int]] = {}
        trig_pattern_src: dict[int, str] = {}
        turns: list[int | None] = [None] * n
        for t_index in active:
            when = self.triggers[t_index].when
            phrases: list[tuple[tuple[str, ...], DetectorKind]] = [
                (keyword_units(k), "keywords") for k in when.keywords or ()
            ] + [(requested_units(r), "requested") for r in when.requested or ()]
            for units, kind in phrases:
                if not units:
                    continue
                d = det_index.setdefault(units, len(det_index))
                if d == len(det_uses):
                    det_uses.append([])
                if all(t != t_index for t, _ in det_uses[d]):
                    det_uses[d].append((t_index, kind))
                    trig_dets[t_index].append((d, kind))
            if when.pattern is not None:
                patterns.setdefault(when.pattern, []).append(t_index)
                trig_pattern_src[t_index] = when.pattern
            if when.turns_above is not None:
                turns[t_index] = when.turns_above
        detectors = list(det_index)
        words = [unit_words(units) for units in detectors]
        self.det_uses: tuple[tuple[tuple[int, DetectorKind], ...], ...] = tuple(
            tuple(u) for u in det_uses
        )
        self.det_regex: tuple[re.Pattern[str], ...] = tuple(map(detector_regex, detectors))
        self.det_words: tuple[frozenset[str], ...] = tuple(frozenset(w) for w in words)
        self.det_simple: tuple[bool, ...] = tuple(  # one word, nothing else: presence is a match
            len(words[d]) == 1 and len(words[d][0]) == len(units)
            for d, units in enumerate(detectors)
        )
        self.det_best: tuple[int, ...] = tuple(min(rank[t] for t, _ in u) for u in det_uses)
        dfs = sorted(range(len(detectors)), key=lambda d: (*detectors[d], _LEAF))
        det_dfs = [0] * len(detectors)
        for position, d in enumerate(dfs):
            det_dfs[d] = position
        self.det_dfs: tuple[int, ...] = tuple(det_dfs)
        compiled: list[PatternDetector] = []
        pattern_tokens: list[frozenset[str] | None] = []
        pattern_index: dict[str, int] = {}
        for source, users in patterns.items():
            regex = compile_pattern(source)  # RE2: linear in the message, whatever it says
            literals, folded, max_offset = required_literals(source, 0)
            pattern_index[source] = len(compiled)
            compiled.append(PatternDetector(tuple(users), regex, literals, folded, max_offset))
            pattern_tokens.append(token_requirement(source, 0))
        self.patterns: tuple[PatternDetector, ...] = tuple(compiled)
        self.pattern_tokens: tuple[frozenset[str] | None, ...] = tuple(pattern_tokens)
        key_index: dict[str, list[int]] = {w: [] for ws in pattern_tokens for w in ws or ()}
        wordless: list[int] = []
        for d, ws in enumerate(words):
            for w in ws:
                key_index.setdefault(w, [])
            if ws:
                key_index[max(ws, key=len)].append(d)  # the longest word: likely the rarest
            else:
                wordless.append(d)
        self.key_index: dict[str, tuple[int, ...]] = {w: tuple(ds) for w, ds in key_index.items()}
        self.vocabulary = Vocabulary(key_index)
        self.wordless: tuple[int, ...] = tuple(wordless)
        self.trig_dets: tuple[tuple[tuple[int, DetectorKind], ...], ...] = tuple(
            tuple(ds) for ds in trig_dets
        )
        self.trig_pattern: tuple[int, ...] = tuple(
            pattern_index[trig_pattern_src[t]] if t in trig_pattern_src else -1 for t in range(n)
        )
        self.turns: tuple[int | None, ...] = tuple(turns)
        # Triggers that hold without a keyword/phrase, by rank; a pattern is searched only at
        # its best-ranked user (if it does not match there, it matches for no later one). For
        # ASCII texts, a pattern with a token requirement is visited only when one of its
        # tokens is present (`gate`); the other entries are `lazy_open`.
        lazy: list[LazyEntry] = []
        lazy_open: list[LazyEntry] = []
        gate: dict[str, list[LazyEntry]] = {}
        searched: set[int] = set()
        for r, t in enumerate(by_rank):
            p = self.trig_pattern[t]
            if p in searched:
                p = -1
            elif p >= 0:
                searched.add(p)
            above = turns[t]
            if p < 0 and above is None:
                continue
            lazy.append((r, t, p, above))
            required = self.pattern_tokens[p] if p >= 0 else None
            if required is None:
                lazy_open.append((r, t, p, above))
                continue
            if above is not None:
                lazy_open.append((r, t, -1, above))
            for w in required:
                gate.setdefault(w, []).append((r, t, p, None))
        self.lazy: tuple[LazyEntry, ...] = tuple(lazy)
        self.lazy_open: tuple[LazyEntry, ...] = tuple(lazy_open)
        self.gate: dict[str, tuple[LazyEntry, ...]] = {w: tuple(es) for w, es in gate.items()}
