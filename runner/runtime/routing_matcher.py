"""The compiled trigger matcher of one member: `TriggerMatcher`, `compile_triggers`, `MatcherCache`.

Role: compiled once per team revision (MatcherCache) from a member's handoff triggers, queried
per user message by runner.runtime.routing.decide_handoff (`best`) and for events (`match`).
Detectors and prefilters come from runner.runtime.routing_text and
runner.runtime.routing_prefilter; what the hot path needs from them is bound on the matcher at
compile time or is a module global here (no extra call layers in its loops).

Speed invariant (`best`, hence `decide_handoff`): no regex scans the message per detector and no
loop runs over all keyword triggers. The message is tokenized once at C level (UTF-8 bytes,
`bytes.translate` folds ASCII letters and blanks ASCII non-word bytes, `split`; only pieces
holding non-ASCII characters are folded and re-split with \\w+), and intersected with the
member's vocabulary (every word of every keyword/phrase). Each keyword/phrase is a detector:
one made of a single word holds iff that word is present; any other (several words, or
punctuation such as `#urgent`, `c++`) is a candidate only when all its words are present and is
then confirmed by its own regex, written literal-first so the engine's prefix scan finds it.
Triggers are ranked by (priority, order) once; candidates are confirmed best rank first, then
patterns and turn counts are evaluated lazily in rank order only above the best keyword rank,
stopping at the first that holds. A pattern is skipped when a word every match needs as a whole
token (found by parsing the regex: `\\b(refund|invoice)\\b`) is absent, else when no required
literal occurs (substring test); otherwise it is searched. Spans are computed for the winner
only; `match` (every trigger) uses the same candidates and reports first occurrences (ties at
one start: the detector first in trie order: longest, then `\\W+` before `\\s+` before literal).

Invariants: a matcher is immutable after construction; `best(text, turn=t)` equals
`match(text, turn=t)[0]` (None when empty); nothing does I/O or reads a clock.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from runner.runtime.routing_prefilter import (
    _exotic,
    _pattern_fold,
    _PatternDetector,
    _required_literals,
    _token_requirement,
)
from runner.runtime.routing_text import (
    _ASCII_WORDS,
    _MARK_HIGH,
    _MAX_ODD,
    _WORDS,
    _detector_regex,
    _keyword_units,
    _requested_units,
    _unit_words,
    fold_case,
)
from runner.spec.models import HandoffTrigger, Team

DetectorKind = Literal["keywords", "requested", "pattern", "turns_above"]

__all__ = [
    "DetectorKind",
    "MatcherCache",
    "TriggerMatch",
    "TriggerMatcher",
    "compile_team",
    "compile_triggers",
]


@dataclass(frozen=True, slots=True)
class TriggerMatch:
    """One trigger that holds for a message, with what made it hold (for events).

    `matched` is the text that matched (a keyword, phrase or pattern span as written by the
    user) or `turn N` for `turns_above`; `span` is its (start, end) in the message, None for
    `turns_above`. When several detectors of the trigger hold, the first keyword/phrase
    occurrence is reported, else the pattern's first match, else the turn count.
    """

    trigger: str
    target: str
    priority: int
    order: int
    kind: DetectorKind
    matched: str
    span: tuple[int, int] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "target": self.target,
            "priority": self.priority,
            "kind": self.kind,
            "matched": self.matched,
            "span": list(self.span) if self.span is not None else None,
        }


_LEAF = "\U0010ffff\U0010ffff"  # sorts after every unit: a detector after its own extensions
_EMPTY: frozenset[str] = frozenset()

_Lazy = tuple[int, int, int, int | None]  # rank, trigger, pattern (-1: none), turns_above


class TriggerMatcher:
    """The compiled handoff triggers of one member. Immutable after construction.

    `match(text, turn=...)`: every active trigger that holds, by priority then declaration
    order. `best(...)`: the first of those, or None (computed without evaluating the rest).
    """

    __slots__ = (
        "_bvocab",
        "_by_rank",
        "_det_best",
        "_det_dfs",
        "_det_regex",
        "_det_simple",
        "_det_uses",
        "_det_words",
        "_gate",
        "_key_index",
        "_lazy",
        "_lazy_open",
        "_pattern_tokens",
        "_patterns",
        "_trig_dets",
        "_trig_pattern",
        "_triggers",
        "_turns",
        "_vocab",
        "_wordless",
    )

    def __init__(self, triggers: Sequence[HandoffTrigger]) -> None:
        self._triggers: tuple[HandoffTrigger, ...] = tuple(triggers)
        n = len(self._triggers)
        active = [i for i, t in enumerate(self._triggers) if t.active]
        by_rank = sorted(active, key=lambda i: (self._triggers[i].priority, i))
        rank = {t: r for r, t in enumerate(by_rank)}
        self._by_rank: tuple[int, ...] = tuple(by_rank)
        det_index: dict[tuple[str, ...], int] = {}
        det_uses: list[list[tuple[int, DetectorKind]]] = []
        trig_dets: list[list[tuple[int, DetectorKind]]] = [[] for _ in range(n)]
        patterns: dict[str, list[int]] = {}
        trig_pattern_src: dict[int, str] = {}
        turns: list[int | None] = [None] * n
        for t_index in active:
            when = self._triggers[t_index].when
            phrases: list[tuple[tuple[str, ...], DetectorKind]] = [
                (_keyword_units(k), "keywords") for k in when.keywords or ()
            ] + [(_requested_units(r), "requested") for r in when.requested or ()]
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
        words = [_unit_words(units) for units in detectors]
        self._det_uses: tuple[tuple[tuple[int, DetectorKind], ...], ...] = tuple(
            tuple(u) for u in det_uses
        )
        self._det_regex: tuple[re.Pattern[str], ...] = tuple(map(_detector_regex, detectors))
        self._det_words: tuple[frozenset[str], ...] = tuple(frozenset(w) for w in words)
        self._det_simple: tuple[bool, ...] = tuple(  # one word, nothing else: presence is a match
            len(words[d]) == 1 and len(words[d][0]) == len(units)
            for d, units in enumerate(detectors)
        )
        self._det_best: tuple[int, ...] = tuple(min(rank[t] for t, _ in u) for u in det_uses)
        dfs = sorted(range(len(detectors)), key=lambda d: (*detectors[d], _LEAF))
        det_dfs = [0] * len(detectors)
        for position, d in enumerate(dfs):
            det_dfs[d] = position
        self._det_dfs: tuple[int, ...] = tuple(det_dfs)
        compiled: list[_PatternDetector] = []
        pattern_tokens: list[frozenset[str] | None] = []
        pattern_index: dict[str, int] = {}
        for source, users in patterns.items():
            regex = re.compile(source)
            literals, folded, max_offset = _required_literals(source, regex.flags)
            pattern_index[source] = len(compiled)
            compiled.append(_PatternDetector(tuple(users), regex, literals, folded, max_offset))
            pattern_tokens.append(_token_requirement(source, regex.flags))
        self._patterns: tuple[_PatternDetector, ...] = tuple(compiled)
        self._pattern_tokens: tuple[frozenset[str] | None, ...] = tuple(pattern_tokens)
        key_index: dict[str, list[int]] = {w: [] for ws in pattern_tokens for w in ws or ()}
        wordless: list[int] = []
        for d, ws in enumerate(words):
            for w in ws:
                key_index.setdefault(w, [])
            if ws:
                key_index[max(ws, key=len)].append(d)  # the longest word: likely the rarest
            else:
                wordless.append(d)
        self._key_index: dict[str, tuple[int, ...]] = {w: tuple(ds) for w, ds in key_index.items()}
        self._vocab: frozenset[str] = frozenset(key_index)
        self._bvocab: frozenset[bytes] = frozenset(w.encode() for w in key_index)
        self._wordless: tuple[int, ...] = tuple(wordless)
        self._trig_dets: tuple[tuple[tuple[int, DetectorKind], ...], ...] = tuple(
            tuple(ds) for ds in trig_dets
        )
        self._trig_pattern: tuple[int, ...] = tuple(
            pattern_index[trig_pattern_src[t]] if t in trig_pattern_src else -1 for t in range(n)
        )
        self._turns: tuple[int | None, ...] = tuple(turns)
        # Triggers that hold without a keyword/phrase, by rank; a pattern is searched only at
        # its best-ranked user (if it does not match there, it matches for no later one). For
        # ASCII texts, a pattern with a token requirement is visited only when one of its
        # tokens is present (`_gate`); the other entries are `_lazy_open`.
        lazy: list[_Lazy] = []
        lazy_open: list[_Lazy] = []
        gate: dict[str, list[_Lazy]] = {}
        searched: set[int] = set()
        for r, t in enumerate(by_rank):
            p = self._trig_pattern[t]
            if p in searched:
                p = -1
            elif p >= 0:
                searched.add(p)
            above = turns[t]
            if p < 0 and above is None:
                continue
            lazy.append((r, t, p, above))
            required = self._pattern_tokens[p] if p >= 0 else None
            if required is None:
                lazy_open.append((r, t, p, above))
                continue
            if above is not None:
                lazy_open.append((r, t, -1, above))
            for w in required:
                gate.setdefault(w, []).append((r, t, p, None))
        self._lazy: tuple[_Lazy, ...] = tuple(lazy)
        self._lazy_open: tuple[_Lazy, ...] = tuple(lazy_open)
        self._gate: dict[str, tuple[_Lazy, ...]] = {w: tuple(es) for w, es in gate.items()}

    @property
    def triggers(self) -> tuple[HandoffTrigger, ...]:
        return self._triggers

    def _present(self, text: str) -> frozenset[str]:
        """The vocabulary words that are whole \\w+ runs of `fold_case(text)`.

        One C-level pass: UTF-8 bytes, ASCII letters folded and other ASCII non-word bytes
        blanked by `bytes.translate`, split on blanks. A piece without non-ASCII bytes is a
        word run; pieces with some (accents, curly quotes, emoji) are folded and re-split
        with \\w+ (or the whole text is, when there are many, or a U+03A3 whose lowercase
        depends on its neighbours).
        """
        if text.isascii():
            hits = self._bvocab.intersection(text.encode().translate(_ASCII_WORDS).split())
            return frozenset([h.decode() for h in hits]) if hits else _EMPTY
        if "\u03a3" in text:  # final sigma folds by context: fold the whole text
            return self._vocab.intersection(_WORDS.findall(fold_case(text)))
        blanked = text.encode().translate(_ASCII_WORDS)
        found = {h.decode() for h in self._bvocab.intersection(blanked.split())}
        marked = blanked.translate(_MARK_HIGH)  # every non-ASCII byte is 0x80: memchr finds it
        at = marked.find(b"\x80")
        for _ in range(_MAX_ODD):
            if at < 0:
                return frozenset(found)
            start = blanked.rfind(b" ", 0, at) + 1
            end = blanked.find(b" ", at)
            if end < 0:
                end = len(blanked)
            piece = blanked[start:end].decode()  # without U+03A3, folding a piece in or out of
            found.update(self._vocab.intersection(_WORDS.findall(fold_case(piece))))  # context
            at = marked.find(b"\x80", end)
        return self._vocab.intersection(_WORDS.findall(fold_case(text)))  # many such pieces

    def _candidates(self, present: frozenset[str]) -> list[int]:
        """Detectors that may match: all their words are present (or they have none)."""
        key_index, det_words = self._key_index, self._det_words
        out = [d for w in present for d in key_index[w] if det_words[d] <= present]
        out.extend(self._wordless)
        return out

    def match(self, text: str, *, turn: int) -> list[TriggerMatch]:
        """Every active trigger that holds for `text` at `turn`, best first."""
        found: dict[int, TriggerMatch] = {}
        present = self._present(text) if self._vocab else _EMPTY
        if present or self._wordless:
            cands = self._candidates(present)
            if cands:
                low = fold_case(text)
                first: dict[int, tuple[int, int, int, DetectorKind]] = {}
                for d in cands:
                    m = self._det_regex[d].search(low)
                    if m is None:
                        continue
                    at = (m.start(), self._det_dfs[d], m.end())
                    for t, kind in self._det_uses[d]:
                        prev = first.get(t)
                        if prev is None or at[:2] < prev[:2]:
                            first[t] = (*at, kind)
                for t, (start, _dfs, end, kind) in first.items():
                    found[t] = self._result(t, kind, text[start:end], (start, end))
        if self._patterns:
            folded: str | None = None
            gating = not _exotic(text)
            for p, required in zip(self._patterns, self._pattern_tokens, strict=True):
                if all(t in found for t in p.triggers):
                    continue
                if gating and required is not None and required.isdisjoint(present):
                    continue
                if p.folded and folded is None:
                    folded = _pattern_fold(text)
                m = p.search(text, folded)
                if m is not None:
                    for t in p.triggers:
                        if t not in found:
                            found[t] = self._result(t, "pattern", m.group(0), m.span())
        for t_index, above in enumerate(self._turns):
            if above is not None and turn > above and t_index not in found:
                found[t_index] = self._result(t_index, "turns_above", f"turn {turn}", None)
        return sorted(found.values(), key=lambda r: (r.priority, r.order))

    def best(self, text: str, *, turn: int) -> TriggerMatch | None:
        """The trigger that fires: lowest priority number, then first declared; None if none.

        Same as `match(...)[0]`, but only as much is evaluated as decides it: keyword/phrase
        detectors by word presence (a regex only for candidates that need confirming, best
        rank first), then patterns and turn counts of the triggers ranked above that.
        """
        none = len(self._by_rank)
        best = none
        present = _EMPTY
        pending: list[int] = []
        det_best = self._det_best
        if self._vocab:
            present = self._present(text)
            if present:
                key_index, simple, det_words = self._key_index, self._det_simple, self._det_words
                for w in present:
                    for d in key_index[w]:
                        r = det_best[d]
                        if r < best:
                            if simple[d]:
                                best = r
                            elif det_words[d] <= present:
                                pending.append(d)
        if self._wordless:
            pending.extend(self._wordless)
        low: str | None = None
        if pending:
            pending.sort(key=det_best.__getitem__)
            for d in pending:
                r = det_best[d]
                if r >= best:
                    break
                if low is None:
                    low = fold_case(text)
                if self._det_regex[d].search(low) is not None:
                    best = r
                    break
        walk = self._lazy
        if walk and not _exotic(text):
            walk = self._lazy_open
            if self._gate and present:
                gate = self._gate
                gated = [e for w in present if w in gate for e in gate[w]]
                if gated:
                    walk = tuple(sorted({*walk, *gated}))
        if walk:
            patterns = self._patterns
            pfold: str | None = None
            for r, t, p, above in walk:
                if r >= best:
                    break
                if above is not None and turn > above:
                    return self._report(t, text, turn, _EMPTY, low, phrases=False)
                if p < 0:
                    continue
                pd = patterns[p]
                literals = pd.literals
                if literals is not None:
                    if pd.folded:
                        if pfold is None:
                            pfold = _pattern_fold(text)
                        hay = pfold
                    else:
                        hay = text
                    for lit in literals:
                        if lit in hay:
                            break
                    else:
                        continue
                m = pd.search(text, pfold)
                if m is not None:
                    return self._result(t, "pattern", m.group(0), m.span())
        if best == none:
            return None
        return self._report(self._by_rank[best], text, turn, present, low, phrases=True)

    def _report(
        self,
        t: int,
        text: str,
        turn: int,
        present: frozenset[str],
        low: str | None,
        *,
        phrases: bool,
    ) -> TriggerMatch:
        """The TriggerMatch of trigger `t`, known to hold: its first keyword/phrase occurrence
        (only looked for when `phrases`), else its pattern's first match, else the turn."""
        if phrases:
            if low is None:
                low = fold_case(text)
            first: tuple[int, int, int, DetectorKind] | None = None
            for d, kind in self._trig_dets[t]:
                words = self._det_words[d]
                if words and not words <= present:
                    continue
                m = self._det_regex[d].search(low)
                if m is not None and (first is None or (m.start(), self._det_dfs[d]) < first[:2]):
                    first = (m.start(), self._det_dfs[d], m.end(), kind)
            if first is not None:
                start, _dfs, end, kind = first
                return self._result(t, kind, text[start:end], (start, end))
        p = self._trig_pattern[t]
        if p >= 0:
            pd = self._patterns[p]
            m = pd.search(text, _pattern_fold(text) if pd.folded else None)
            if m is not None:
                return self._result(t, "pattern", m.group(0), m.span())
        return self._result(t, "turns_above", f"turn {turn}", None)

    def _result(
        self, t_index: int, kind: DetectorKind, matched: str, span: tuple[int, int] | None
    ) -> TriggerMatch:
        trig = self._triggers[t_index]
        return TriggerMatch(
            trigger=trig.name,
            target=trig.target,
            priority=trig.priority,
            order=t_index,
            kind=kind,
            matched=matched,
            span=span,
        )


def compile_triggers(triggers: Sequence[HandoffTrigger]) -> TriggerMatcher:
    """Compile one member's handoff triggers (do it once per team revision, see MatcherCache)."""
    return TriggerMatcher(triggers)


def compile_team(team: Team) -> dict[str, TriggerMatcher]:
    """A matcher per member, keyed by the member's agent name."""
    return {m.agent: compile_triggers(m.handoff_triggers) for m in team.members}


class MatcherCache:
    """Compiled matchers of teams, per (team name, revision); keeps the last `size` entries.

    `revision` is whatever identifies the applied team spec (a version or content hash): a new
    revision compiles afresh, the same revision returns the same matchers. Not thread-safe.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str], dict[str, TriggerMatcher]] = OrderedDict()

    def get(self, team: Team, *, revision: str) -> Mapping[str, TriggerMatcher]:
        key = (team.name, revision)
        entry = self._entries.get(key)
        if entry is None:
            entry = compile_team(team)
            self._entries[key] = entry
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return entry
