"""Team routing engine: which handoff trigger fires on a user message, and which member takes it.

Role: the pure decision half of "teams at run time". A team session (runner.runtime.lifecycle,
via a TeamRouter) calls `decide_handoff` once per user message with the answering member's
compiled `TriggerMatcher`, the live workloads and availability; it gets back a frozen
`HandoffDecision` and applies it (events, state). Nothing here does I/O or reads a clock.

Trigger semantics (`HandoffTrigger.when`):
  - `keywords`: whole words, case-insensitive. A keyword matches where it is neither preceded
    nor followed by a word character (letter, digit, underscore): "Error" matches `error`,
    "terror" and "errors" do not; "error-prone" does. A multi-word keyword is a phrase whose
    words may be separated by any run of whitespace ("stack  trace" matches `stack trace`).
  - `requested`: phrases matched case-insensitively at word boundaries; the phrase's words may
    be separated by any run of non-word characters (whitespace and punctuation), and
    punctuation at its ends is ignored: `talk to a human` matches "I want to TALK TO A  human!"
    and "talk to... a human".
  - `pattern`: a Python regular expression searched anywhere in the original text, with the
    flags it carries: case-sensitive unless it says so itself (`(?i)...`).
  - `turns_above: N`: holds when `turn` (user messages so far, this one included) is > N.
  - Several keys in one `when` are alternative detectors: the trigger holds when ANY holds (a
    list of detectors, like the lists inside each key).
  - Case-insensitive means equal after Unicode lowercasing character by character (`str.lower`;
    the one character whose lowercase is longer, U+0130, is compared as itself).
  - Inactive triggers (`active: false`) never match.
  - Ordering: by `priority` ascending (1 beats 2), ties by declaration order.

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

Load balancing (`select_member`): members of the specialization that are `available` (live
availability overrides the spec) and below `max_workload`; the most room
(`max_workload - workload`) wins, then the lowest `priority` number, then declaration order.
"""

from __future__ import annotations

import importlib
import re
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from runner.spec.models import HandoffTrigger, Team, TeamMember

HUMAN = "human"

DetectorKind = Literal["keywords", "requested", "pattern", "turns_above"]
HandoffAction = Literal["stay", "handoff", "human", "no_free_member"]

__all__ = [
    "HUMAN",
    "DetectorKind",
    "HandoffAction",
    "HandoffDecision",
    "MatcherCache",
    "TriggerMatch",
    "TriggerMatcher",
    "compile_team",
    "compile_triggers",
    "decide_handoff",
    "fold_case",
    "keyword_regex",
    "requested_regex",
    "select_member",
]


# ---------------------------------------------------------------- results


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


@dataclass(frozen=True, slots=True)
class HandoffDecision:
    """What to do with one user message.

    action:
      - `stay`: no trigger fired, or the fired trigger targets the answering member's own
        specialization (a handoff to the member already answering is not a handoff).
      - `handoff`: hand the session to `member` (of specialization `target`).
      - `human`: the trigger targets `human`; the session waits for an operator.
      - `no_free_member`: the target specialization has no free member; the coordinator
        follows `on_no_free_member` (`escalate`: evaluate the escalation path with
        `no_free_member=True`; `wait`: queue until a member frees up).
    """

    action: HandoffAction
    from_agent: str
    trigger: TriggerMatch | None = None
    target: str | None = None
    member: TeamMember | None = None
    on_no_free_member: Literal["escalate", "wait"] | None = None

    @property
    def no_free_member(self) -> bool:
        return self.action == "no_free_member"

    @property
    def to_agent(self) -> str | None:
        """The agent (or `human`) the session goes to, None when it stays or must wait."""
        if self.action == "handoff" and self.member is not None:
            return self.member.agent
        if self.action == "human":
            return HUMAN
        return None

    @property
    def trigger_name(self) -> str | None:
        return self.trigger.trigger if self.trigger is not None else None


# ---------------------------------------------------------------- case folding & detectors

_WS = "\x00ws"  # unit: a run of whitespace (keywords)
_NW = "\x00nw"  # unit: a run of non-word characters (requested phrases)
_UNIT_RE = {_WS: r"\s+", _NW: r"\W+"}
_WORD = re.compile(r"\w")
_WORDS = re.compile(r"\w+")


def fold_case(text: str) -> str:
    """`text` lowercased character by character, same length (U+0130 stays as it is)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _keyword_units(keyword: str) -> tuple[str, ...]:
    units: list[str] = []
    for i, token in enumerate(fold_case(keyword).split()):
        if i:
            units.append(_WS)
        units.extend(token)
    return tuple(units)


def _requested_units(phrase: str) -> tuple[str, ...]:
    words = _WORDS.findall(fold_case(phrase))
    if not words:  # only punctuation: match it like a keyword
        return _keyword_units(phrase)
    units: list[str] = []
    for i, word in enumerate(words):
        if i:
            units.append(_NW)
        units.extend(word)
    return tuple(units)


def _units_source(units: Iterable[str]) -> str:
    return "".join(_UNIT_RE.get(u) or re.escape(u) for u in units)


def keyword_regex(keyword: str) -> re.Pattern[str]:
    """The stand-alone regex of one keyword, to run on `fold_case(text)` (reference semantics)."""
    return re.compile(r"(?<!\w)" + _units_source(_keyword_units(keyword)) + r"(?!\w)")


def requested_regex(phrase: str) -> re.Pattern[str]:
    """The stand-alone regex of one requested phrase, to run on `fold_case(text)`."""
    return re.compile(r"(?<!\w)" + _units_source(_requested_units(phrase)) + r"(?!\w)")


@dataclass(frozen=True, slots=True)
class _PatternDetector:
    """One distinct pattern, the triggers using it, and its literal prefilter.

    Every match of `regex` contains one of `literals` (looked for in the case-folded text
    when `folded`), starting at most `max_offset` characters after the match's start (None:
    unbounded). No literals: always searched.
    """

    triggers: tuple[int, ...]
    regex: re.Pattern[str]
    literals: tuple[str, ...] | None
    folded: bool
    max_offset: int | None

    def search(self, text: str, folded_text: str | None) -> re.Match[str] | None:
        """`regex.search(text)`, exactly, but only where the prefilter says a match can start."""
        if self.literals is None:
            return self.regex.search(text)
        hay = text if not self.folded else folded_text or _pattern_fold(text)
        if self.max_offset is None:
            found = any(lit in hay for lit in self.literals)
            return self.regex.search(text) if found else None
        present = [lit for lit in self.literals if lit in hay]
        if not present:
            return None
        starts: set[int] = set()
        off = self.max_offset
        for lit in present:
            i = hay.find(lit)
            while i != -1:
                starts.update(range(max(0, i - off), i + 1))
                if len(starts) > _MAX_STARTS:
                    return self.regex.search(text)
                i = hay.find(lit, i + 1)
        for start in sorted(starts):
            m = self.regex.match(text, start)
            if m is not None:
                return m
        return None


# ---------------------------------------------------------------- pattern prefilter


def _pattern_fold(text: str) -> str:
    """Fold for IGNORECASE prefilters, same length as `text`: every re.IGNORECASE equivalent of
    an ASCII letter maps to its lowercase (U+0130 -> i, U+0131 -> i, U+017F -> s, U+212A -> k)."""
    if text.isascii():
        return text.lower()
    return text.replace("\u0130", "i").lower().replace("\u0131", "i").replace("\u017f", "s")


_MAX_ALTERNATIVES = 16
_MAX_STARTS = 48  # more candidate starts than this: one plain search is cheaper
_UNBOUNDED = 1 << 16

_Found = tuple[frozenset[str], int | None]  # literals, max offset from the match start


def _required_literals(pattern: str, flags: int) -> tuple[tuple[str, ...] | None, bool, int | None]:
    """Strings one of which every match of `pattern` contains, whether they are to be looked
    for in the folded text, and how far after the match start they begin at most.

    Sound by construction: only literal runs that any match must contain are used (a literal
    run in a sequence, a group, a repeat of at least one, every branch of an alternation); a
    case-insensitive literal is used only when ASCII. Offsets add the widest width of what
    precedes. (None, False, None) when nothing is required.
    """
    try:
        parser: Any = importlib.import_module("re._parser")
        parsed: Any = parser.parse(pattern, flags)
    except Exception:  # private API moved or pattern unparsable: no prefilter, always search
        return None, False, None
    icase_seen = [bool(parsed.state.flags & re.IGNORECASE)]

    def width(op: Any, av: Any) -> int | None:
        hi = int(parser.SubPattern(parsed.state, [(op, av)]).getwidth()[1])
        return None if hi >= _UNBOUNDED else hi

    def plus(a: int | None, b: int | None) -> int | None:
        return None if a is None or b is None else a + b

    def key(cand: _Found) -> tuple[int, int]:
        return (min(len(s) for s in cand[0]), cand[1] is not None)

    def walk(seq: Any, icase: bool) -> _Found | None:
        best: _Found | None = None
        run: list[str] = []
        run_at: int | None = 0
        at: int | None = 0  # widest offset of the current item from the sequence's start

        def consider(cand: _Found | None, offset: int | None) -> None:
            nonlocal best
            if cand is None or not cand[0] or "" in cand[0] or len(cand[0]) > _MAX_ALTERNATIVES:
                return
            placed = (cand[0], plus(offset, cand[1]))
            if best is None or key(placed) > key(best):
                best = placed

        def close() -> None:
            if run:
                consider((frozenset({"".join(run)}), 0), run_at)
                run.clear()

        for op, av in seq:
            name = op.name
            if name == "LITERAL" and not (icase and not chr(av).isascii()):
                if not run:
                    run_at = at
                run.append(chr(av))
                at = plus(at, 1)
                continue
            close()
            if name == "SUBPATTERN":
                _group, add, delete, sub = av
                sub_icase = (icase or bool(add & re.IGNORECASE)) and not delete & re.IGNORECASE
                icase_seen[0] = icase_seen[0] or sub_icase
                consider(walk(sub, sub_icase), at)
            elif name == "ATOMIC_GROUP":
                consider(walk(av, icase), at)
            elif name == "BRANCH":
                alternatives = [walk(b, icase) for b in av[1]]
                if all(a is not None for a in alternatives):
                    found = [a for a in alternatives if a is not None]
                    offsets = [f[1] for f in found]
                    worst = None if None in offsets else max(o for o in offsets if o is not None)
                    consider((frozenset().union(*(f[0] for f in found)), worst), at)
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                low, _high, sub = av
                if low >= 1:
                    consider(walk(sub, icase), at)
            at = plus(at, width(op, av))
        close()
        return best

    try:
        found = walk(parsed, bool(parsed.state.flags & re.IGNORECASE))
    except Exception:
        return None, False, None
    if found is None:
        return None, False, None
    folded = icase_seen[0]
    literals = sorted(
        {_pattern_fold(s) if folded else s for s in found[0]}, key=lambda s: (-len(s), s)
    )
    return tuple(literals), folded, found[1]


_MAX_TOKENS = 32


def _token_requirement(pattern: str, flags: int) -> frozenset[str] | None:
    """Lowercased words one of which is a whole \\w+ run of any ASCII text `pattern` matches in.

    Found where the pattern has a finite, small set of ASCII word strings (literals, small
    classes, short repeats, alternations) with a guard on both sides: `\\b`, `^`/`$`/`\\A`/`\\Z`,
    or a character (class) that cannot be an ASCII word character. Such a string is then a
    maximal word run of the text, so, lowercased, one of the text's tokens (`fold_case`).
    Sound for texts without U+017F, U+0131, U+0130 (IGNORECASE-equal to s/i but not folded to
    them; see `_exotic`); never derived under re.ASCII. None when not found.
    """
    try:
        parser: Any = importlib.import_module("re._parser")
        parsed: Any = parser.parse(pattern, flags)
    except Exception:  # private API moved or pattern unparsable: no token prefilter
        return None
    if (parsed.state.flags | flags) & re.ASCII or "(?a" in pattern:
        return None  # \b and \W would disagree with the Unicode tokens of non-ASCII texts

    def word_char(c: int) -> bool:
        return c < 128 and (chr(c).isalnum() or c == 95)

    def guard_char(item: tuple[Any, Any]) -> bool:
        """Matches exactly one character, never an ASCII word character."""
        op, av = item[0].name, item[1]
        if op == "LITERAL":
            return av < 128 and not word_char(av)
        if op != "IN":
            return False
        for m_op, m_av in av:
            name = m_op.name
            if name == "LITERAL" and m_av < 128 and not word_char(m_av):
                continue
            if (
                name == "RANGE"
                and m_av[1] < 128
                and not any(map(word_char, range(m_av[0], m_av[1] + 1)))
            ):
                continue
            if name == "CATEGORY" and m_av.name in ("CATEGORY_SPACE", "CATEGORY_NOT_WORD"):
                continue
            return False
        return True

    def guard(item: tuple[Any, Any]) -> bool:
        """Next to a word run, the character on that side is a non-word one (or none)."""
        op, av = item[0].name, item[1]
        if op == "AT":
            return str(av.name) in (
                "AT_BOUNDARY",
                "AT_BEGINNING",
                "AT_BEGINNING_STRING",
                "AT_END",
                "AT_END_STRING",
            )
        if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = av
            return bool(low >= 1 and len(sub) == 1 and guard_char(sub[0]))
        return guard_char(item)

    def product(a: set[str], b: set[str]) -> set[str] | None:
        if len(a) * len(b) > _MAX_TOKENS:
            return None
        return {x + y for x in a for y in b}

    def lang(item: tuple[Any, Any]) -> set[str] | None:
        """The strings of ASCII word characters `item` matches exactly, if few; else None."""
        op, av = item[0].name, item[1]
        if op == "LITERAL":
            return {chr(av).lower()} if word_char(av) else None
        if op == "IN":
            chars: set[str] = set()
            for m_op, m_av in av:
                if m_op.name == "LITERAL" and word_char(m_av):
                    chars.add(chr(m_av).lower())
                elif m_op.name == "RANGE" and m_av[1] - m_av[0] < _MAX_TOKENS:
                    if not all(map(word_char, range(m_av[0], m_av[1] + 1))):
                        return None
                    chars.update(chr(c).lower() for c in range(m_av[0], m_av[1] + 1))
                else:
                    return None
            return chars if 0 < len(chars) <= _MAX_TOKENS else None
        if op == "SUBPATTERN":
            return seq_lang(av[3])
        if op == "BRANCH":
            out: set[str] = set()
            for alternative in av[1]:
                sub = seq_lang(alternative)
                if sub is None:
                    return None
                out |= sub
            return out if len(out) <= _MAX_TOKENS else None
        if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub_seq = av
            if high > 4:
                return None
            one = seq_lang(sub_seq)
            if one is None:
                return None
            acc: set[str] = {""}
            total: set[str] = set()
            for k in range(high + 1):
                if k >= low:
                    total |= acc
                if k < high:
                    grown = product(acc, one)
                    if grown is None:
                        return None
                    acc = grown
            return total if len(total) <= _MAX_TOKENS else None
        return None

    def seq_lang(seq: Any) -> set[str] | None:
        acc: set[str] | None = {""}
        for item in seq:
            sub = lang(item)
            if sub is None or acc is None:
                return None
            acc = product(acc, sub)
        return acc

    def find(seq: Any, left: bool, right: bool) -> set[str] | None:
        """A requirement of a sequence whose left/right neighbours are guards or not."""
        items = list(seq)
        best: set[str] | None = None

        def consider(cand: set[str] | None) -> None:
            nonlocal best
            if cand and "" not in cand and (best is None or len(cand) < len(best)):
                best = cand

        for i, item in enumerate(items):
            lg = guard(items[i - 1]) if i else left
            rg = guard(items[i + 1]) if i + 1 < len(items) else right
            op, av = item[0].name, item[1]
            if lg:
                acc: set[str] | None = {""}
                for j in range(i, len(items)):
                    sub = lang(items[j])
                    acc = product(acc, sub) if acc is not None and sub is not None else None
                    if acc is None:
                        break
                    if guard(items[j + 1]) if j + 1 < len(items) else right:
                        consider(acc)
            if op == "SUBPATTERN":
                consider(find(av[3], lg, rg))
            elif op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
                consider(find(av[2], False, False))
            elif op == "ATOMIC_GROUP":
                consider(find(av, lg, rg))
            elif op == "BRANCH":
                alternatives = [find(b, lg, rg) for b in av[1]]
                if all(alternatives):
                    consider(set().union(*(a for a in alternatives if a)))
        return best

    try:
        found = find(parsed, False, False)
    except Exception:
        return None
    return frozenset(found) if found else None


# ---------------------------------------------------------------- the matcher

_LEAF = "\U0010ffff\U0010ffff"  # sorts after every unit: a detector after its own extensions
_EMPTY: frozenset[str] = frozenset()

# ASCII texts are tokenized with one bytes.translate + split: A-Z folds to a-z, every other
# non-word byte becomes a space, so the pieces are exactly the lowercased \w+ runs.
_ASCII_WORDS = bytes(
    b + 32 if 65 <= b <= 90 else b if b >= 128 or chr(b).isalnum() or b == 95 else 32
    for b in range(256)
)
_MARK_HIGH = bytes(range(128)) + b"\x80" * 128
_MAX_ODD = 24  # more pieces with non-ASCII characters: tokenize the whole text with findall


def _exotic(text: str) -> bool:
    """Holds U+017F, U+0131 or U+0130: IGNORECASE-equal to an ASCII letter, not folded to it by
    `fold_case` (U+212A, the Kelvin sign, folds to "k" and is fine). Such texts skip the token
    prefilter of patterns. O(1) for ASCII and Latin-1 texts (no character that wide)."""
    return "\u017f" in text or "\u0131" in text or "\u0130" in text


def _detector_regex(units: tuple[str, ...]) -> re.Pattern[str]:
    """`(?<!\\w)units(?!\\w)`, written with the leading literal run first so that the regex
    engine finds candidates with its literal-prefix scan (a leading lookbehind defeats it, ~30x
    slower on a 2 KB miss): `lead(?<!\\w[\\s\\S]{len(lead)})rest(?!\\w)`."""
    n = 0
    while n < len(units) and units[n] not in _UNIT_RE:
        n += 1
    if n == 0:
        return re.compile(r"(?<!\w)" + _units_source(units) + r"(?!\w)")
    return re.compile(
        re.escape("".join(units[:n]))
        + rf"(?<!\w[\s\S]{{{n}}})"
        + _units_source(units[n:])
        + r"(?!\w)"
    )


def _unit_words(units: tuple[str, ...]) -> tuple[str, ...]:
    """The maximal runs of word characters of a detector: each is a whole \\w+ run of any text
    the detector matches (the detector is bounded by (?<!\\w)/(?!\\w) and its units between
    runs are non-word)."""
    words: list[str] = []
    run: list[str] = []
    for u in units:
        if len(u) == 1 and _WORD.match(u):
            run.append(u)
        elif run:
            words.append("".join(run))
            run.clear()
    if run:
        words.append("".join(run))
    return tuple(words)


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


# ---------------------------------------------------------------- load balancing


def select_member(
    team: Team,
    specialization: str,
    *,
    workloads: Mapping[str, int],
    availability: Mapping[str, str] | None = None,
    exclude: Collection[str] = (),
) -> TeamMember | None:
    """The member of `specialization` to take a session, None when none is free.

    Free: not excluded, available (`availability[agent]` overrides the spec's value; anything
    but `available` is not free), and `workloads[agent]` (0 when absent) below `max_workload`.
    Among free members: most room (`max_workload - workload`), then lowest `priority` number,
    then declaration order.
    """
    best: TeamMember | None = None
    best_key: tuple[int, int, int] | None = None
    for index, member in enumerate(team.members):
        if member.specialization != specialization or member.agent in exclude:
            continue
        status = (
            availability.get(member.agent, member.availability)
            if availability is not None
            else member.availability
        )
        if status != "available":
            continue
        room = member.max_workload - workloads.get(member.agent, 0)
        if room <= 0:
            continue
        key = (-room, member.priority, index)
        if best_key is None or key < best_key:
            best, best_key = member, key
    return best


def decide_handoff(
    team: Team,
    *,
    current_agent: str,
    text: str,
    turn: int,
    workloads: Mapping[str, int],
    availability: Mapping[str, str] | None = None,
    matchers: Mapping[str, TriggerMatcher],
) -> HandoffDecision:
    """The per-message decision for a session answered by `current_agent`.

    Only the answering member's triggers are consulted; the best one (priority, then order)
    decides. Target `human` -> `human`. Target equal to the answering member's specialization
    -> `stay`. Otherwise the member chosen by `select_member` (excluding the answering agent)
    -> `handoff`, or `no_free_member` with the team's `workflow.on_no_free_member`.

    Composition with escalation: the coordinator runs this first, hands off, then evaluates
    the escalation path with `fired_trigger=decision.trigger_name`. A level that fires on the
    same trigger (e.g. level 1 -> technical_support) is recorded as an escalation, and its
    handoff is not repeated: `escalation.handoff_target` returns None when the session is
    already with that specialization.
    """
    matcher = matchers.get(current_agent)
    fired = matcher.best(text, turn=turn) if matcher is not None else None
    if fired is None:
        return HandoffDecision(action="stay", from_agent=current_agent)
    if fired.target == HUMAN:
        return HandoffDecision(
            action="human", from_agent=current_agent, trigger=fired, target=HUMAN
        )
    current = next((m for m in team.members if m.agent == current_agent), None)
    if current is not None and current.specialization == fired.target:
        return HandoffDecision(
            action="stay", from_agent=current_agent, trigger=fired, target=fired.target
        )
    member = select_member(
        team,
        fired.target,
        workloads=workloads,
        availability=availability,
        exclude=(current_agent,),
    )
    if member is None:
        return HandoffDecision(
            action="no_free_member",
            from_agent=current_agent,
            trigger=fired,
            target=fired.target,
            on_no_free_member=team.workflow.on_no_free_member,
        )
    return HandoffDecision(
        action="handoff",
        from_agent=current_agent,
        trigger=fired,
        target=fired.target,
        member=member,
    )
