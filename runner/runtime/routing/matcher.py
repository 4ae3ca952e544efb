"""The compiled trigger matcher of one member: `TriggerMatcher`, `compile_triggers`, `MatcherCache`.

Role: compiled once per team revision (MatcherCache) from a member's handoff triggers (the
tables are built by `runner.runtime.routing.compiled.TriggerIndex`), queried per user message
by `runner.runtime.routing.decision.decide_handoff` (`best`) and for events (`match`). What the
hot path needs is read from the index into locals (no extra call layers in its loops).

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
ASCII word run (found by parsing the regex: `\\b(refund|invoice)\\b`; RE2's `\\b` is ASCII) is
absent, else when no required literal occurs (substring test); otherwise it is searched, by
RE2, in time linear in the message. Spans are computed for the winner
only; `match` (every trigger) uses the same candidates and reports first occurrences (ties at
one start: the detector first in trie order: longest, then `\\W+` before `\\s+` before literal).

Invariants: a matcher is immutable after construction; `best(text, turn=t)` equals
`match(text, turn=t)[0]` (None when empty); nothing does I/O or reads a clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.runtime.routing.compiled import DetectorKind, TriggerIndex
from runner.runtime.routing.prefilter import pattern_fold
from runner.runtime.routing.text import NO_WORDS, fold_case
from runner.spec.models import HandoffTrigger, Team

__all__ = [
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


class TriggerMatcher:
    """The compiled handoff triggers of one member. Immutable after construction.

    `match(text, turn=...)`: every active trigger that holds, by priority then declaration
    order. `best(...)`: the first of those, or None (computed without evaluating the rest).
    """

    __slots__ = ("_ix",)

    def __init__(self, triggers: Sequence[HandoffTrigger]) -> None:
        self._ix = TriggerIndex(triggers)

    @property
    def triggers(self) -> tuple[HandoffTrigger, ...]:
        return self._ix.triggers

    def _candidates(self, present: frozenset[str]) -> list[int]:
        """Detectors that may match: all their words are present (or they have none)."""
        ix = self._ix
        key_index, det_words = ix.key_index, ix.det_words
        out = [d for w in present for d in key_index[w] if det_words[d] <= present]
        out.extend(ix.wordless)
        return out

    def match(self, text: str, *, turn: int) -> list[TriggerMatch]:
        """Every active trigger that holds for `text` at `turn`, best first."""
        ix = self._ix
        found: dict[int, TriggerMatch] = {}
        present = ix.vocabulary.present(text) if ix.vocabulary.words else NO_WORDS
        if present or ix.wordless:
            cands = self._candidates(present)
            if cands:
                low = fold_case(text)
                first: dict[int, tuple[int, int, int, DetectorKind]] = {}
                for d in cands:
                    m = ix.det_regex[d].search(low)
                    if m is None:
                        continue
                    at = (m.start(), ix.det_dfs[d], m.end())
                    for t, kind in ix.det_uses[d]:
                        prev = first.get(t)
                        if prev is None or at[:2] < prev[:2]:
                            first[t] = (*at, kind)
                for t, (start, _dfs, end, kind) in first.items():
                    found[t] = self._result(t, kind, text[start:end], (start, end))
        if ix.patterns:
            folded: str | None = None
            # RE2's \b and \w are ASCII: gate on the text's ASCII word runs
            runs = present if text.isascii() else ix.vocabulary.ascii_runs(text)
            for p, required in zip(ix.patterns, ix.pattern_tokens, strict=True):
                if all(t in found for t in p.triggers):
                    continue
                if runs is not None and required is not None and required.isdisjoint(runs):
                    continue
                if p.folded and folded is None:
                    folded = pattern_fold(text)
                pm = p.search(text, folded)
                if pm is not None:
                    for t in p.triggers:
                        if t not in found:
                            found[t] = self._result(t, "pattern", pm.group(0), pm.span())
        for t_index, above in enumerate(ix.turns):
            if above is not None and turn > above and t_index not in found:
                found[t_index] = self._result(t_index, "turns_above", f"turn {turn}", None)
        return sorted(found.values(), key=lambda r: (r.priority, r.order))

    def best(self, text: str, *, turn: int) -> TriggerMatch | None:
        """The trigger that fires: lowest priority number, then first declared; None if none.

        Same as `match(...)[0]`, but only as much is evaluated as decides it: keyword/phrase
        detectors by word presence (a regex only for candidates that need confirming, best
        rank first), then patterns and turn counts of the triggers ranked above that.
        """
        ix = self._ix
        none = len(ix.by_rank)
        best = none
        present = NO_WORDS
        pending: list[int] = []
        det_best = ix.det_best
        vocabulary = ix.vocabulary
        if vocabulary.words:
            present = vocabulary.present(text)
            if present:
                key_index, simple, det_words = ix.key_index, ix.det_simple, ix.det_words
                for w in present:
                    for d in key_index[w]:
                        r = det_best[d]
                        if r < best:
                            if simple[d]:
                                best = r
                            elif det_words[d] <= present:
                                pending.append(d)
        if ix.wordless:
            pending.extend(ix.wordless)
        low: str | None = None
        if pending:
            pending.sort(key=det_best.__getitem__)
            for d in pending:
                r = det_best[d]
                if r >= best:
                    break
                if low is None:
                    low = fold_case(text)
                if ix.det_regex[d].search(low) is not None:
                    best = r
                    break
        walk = ix.lazy
        # RE2's \b and \w are ASCII: gate on the text's ASCII word runs (None: no gate)
        runs = present if not walk or text.isascii() else vocabulary.ascii_runs(text)
        if walk and runs is not None:
            walk = ix.lazy_open
            if ix.gate and runs:
                gate = ix.gate
                gated = [e for w in runs if w in gate for e in gate[w]]
                if gated:
                    walk = tuple(sorted({*walk, *gated}))
        if walk:
            patterns = ix.patterns
            pfold: str | None = None
            for r, t, p, above in walk:
                if r >= best:
                    break
                if above is not None and turn > above:
                    return self._report(t, text, turn, NO_WORDS, low, phrases=False)
                if p < 0:
                    continue
                pd = patterns[p]
                literals = pd.literals
                if literals is not None:
                    if pd.folded:
                        if pfold is None:
                            pfold = pattern_fold(text)
                        hay = pfold
                    else:
                        hay = text
                    for lit in literals:
                        if lit in hay:
                            break
                    else:
                        continue
                m = pd.regex.search(text)  # the literal gate above is `pd.search`'s own
                if m is not None:
                    return self._result(t, "pattern", m.group(0), m.span())
        if best == none:
            return None
        return self._report(ix.by_rank[best], text, turn, present, low, phrases=True)

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
        ix = self._ix
        if phrases:
            if low is None:
                low = fold_case(text)
            first: tuple[int, int, int, DetectorKind] | None = None
            for d, kind in ix.trig_dets[t]:
                words = ix.det_words[d]
                if words and not words <= present:
                    continue
                m = ix.det_regex[d].search(low)
                if m is not None and (first is None or (m.start(), ix.det_dfs[d]) < first[:2]):
                    first = (m.start(), ix.det_dfs[d], m.end(), kind)
            if first is not None:
                start, _dfs, end, kind = first
                return self._result(t, kind, text[start:end], (start, end))
        p = ix.trig_pattern[t]
        if p >= 0:
            pd = ix.patterns[p]
            pm = pd.search(text, pattern_fold(text) if pd.folded else None)
            if pm is not None:
                return self._result(t, "pattern", pm.group(0), pm.span())
        return self._result(t, "turns_above", f"turn {turn}", None)

    def _result(
        self, t_index: int, kind: DetectorKind, matched: str, span: tuple[int, int] | None
    ) -> TriggerMatch:
        trig = self._ix.triggers[t_index]
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
