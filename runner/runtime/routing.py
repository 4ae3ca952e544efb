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

Speed invariant: the keywords and phrases of one member are compiled into ONE case-sensitive
regex over the lowercased text: a character trie (longest alternative first), anchored on the
non-word character before each word so the regex engine skips ahead with its charset scan, each
leaf an empty group that maps back to its detector. The text is scanned once with `finditer`;
detectors that start at the same position as the reported one (only possible when their first
words are equal) are checked individually there. Patterns are compiled separately, each behind a
literal prefilter (strings any match must contain, found by parsing the regex) so most are
skipped with a substring test. No loop over keyword triggers runs per message.

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


def _first_word(units: tuple[str, ...]) -> str:
    """The leading run of word characters ('' when the detector starts with a non-word char).

    Two detectors can match at the same position only if these are equal: the text's maximal
    word run at that position must equal each detector's first word run.
    """
    out: list[str] = []
    for u in units:
        if len(u) != 1 or not _WORD.match(u):
            break
        out.append(u)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Use:
    """One trigger using a detector."""

    trigger: int
    kind: DetectorKind


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


# ---------------------------------------------------------------- the matcher


def _emit(node: dict[str, Any], groups: list[int]) -> str:
    """Regex source of a trie node; leaves are empty groups numbered in `groups` order."""
    alternatives: list[str] = []
    for unit in sorted(k for k in node if k != ""):
        alternatives.append((_UNIT_RE.get(unit) or re.escape(unit)) + _emit(node[unit], groups))
    if "" in node:  # a detector ends here: after the longer ones (longest first)
        groups.append(node[""])
        alternatives.append(r"()(?!\w)")
    if len(alternatives) == 1:
        return alternatives[0]
    return "(?:" + "|".join(alternatives) + ")"


class TriggerMatcher:
    """The compiled handoff triggers of one member. Immutable after construction.

    `match(text, turn=...)`: every active trigger that holds, by priority then declaration
    order. `best(...)`: the first of those, or None.
    """

    __slots__ = (
        "_det_regex",
        "_det_uses",
        "_group_det",
        "_patterns",
        "_scan",
        "_shadows",
        "_triggers",
        "_turns",
    )

    def __init__(self, triggers: Sequence[HandoffTrigger]) -> None:
        self._triggers: tuple[HandoffTrigger, ...] = tuple(triggers)
        det_index: dict[tuple[str, ...], int] = {}
        det_uses: list[list[_Use]] = []
        patterns: dict[str, list[int]] = {}
        turns: list[tuple[int, int]] = []
        for t_index, trig in enumerate(self._triggers):
            if not trig.active:
                continue
            when = trig.when
            phrases: list[tuple[tuple[str, ...], DetectorKind]] = [
                (_keyword_units(k), "keywords") for k in when.keywords or ()
            ] + [(_requested_units(r), "requested") for r in when.requested or ()]
            for units, kind in phrases:
                if not units:
                    continue
                d = det_index.setdefault(units, len(det_index))
                if d == len(det_uses):
                    det_uses.append([])
                if all(u.trigger != t_index for u in det_uses[d]):
                    det_uses[d].append(_Use(t_index, kind))
            if when.pattern is not None:
                patterns.setdefault(when.pattern, []).append(t_index)
            if when.turns_above is not None:
                turns.append((t_index, when.turns_above))
        detectors = list(det_index)
        self._det_uses: tuple[tuple[_Use, ...], ...] = tuple(tuple(u) for u in det_uses)
        self._det_regex: tuple[re.Pattern[str], ...] = tuple(
            re.compile(r"(?<!\w)" + _units_source(units) + r"(?!\w)") for units in detectors
        )
        by_first: dict[str, list[int]] = {}
        for d, units in enumerate(detectors):
            by_first.setdefault(_first_word(units), []).append(d)
        self._shadows: tuple[tuple[int, ...], ...] = tuple(
            tuple(o for o in by_first[_first_word(units)] if o != d)
            for d, units in enumerate(detectors)
        )
        trie: dict[str, Any] = {}
        for d, units in enumerate(detectors):
            node = trie
            for unit in units:
                node = node.setdefault(unit, {})
            node[""] = d
        groups: list[int] = [-1]  # group 0 is the whole match
        self._scan: re.Pattern[str] | None = (
            re.compile(r"\W(?=" + _emit(trie, groups) + ")") if detectors else None
        )
        self._group_det: tuple[int, ...] = tuple(groups)
        compiled: list[_PatternDetector] = []
        for source, users in patterns.items():
            regex = re.compile(source)
            literals, folded, max_offset = _required_literals(source, regex.flags)
            compiled.append(_PatternDetector(tuple(users), regex, literals, folded, max_offset))
        self._patterns: tuple[_PatternDetector, ...] = tuple(compiled)
        self._turns: tuple[tuple[int, int], ...] = tuple(turns)

    @property
    def triggers(self) -> tuple[HandoffTrigger, ...]:
        return self._triggers

    def match(self, text: str, *, turn: int) -> list[TriggerMatch]:
        """Every active trigger that holds for `text` at `turn`, best first."""
        found: dict[int, TriggerMatch] = {}
        if self._scan is not None:
            self._scan_phrases(text, found)
        if self._patterns:
            folded: str | None = None
            for p in self._patterns:
                if all(t in found for t in p.triggers):
                    continue
                if p.folded and folded is None:
                    folded = _pattern_fold(text)
                m = p.search(text, folded)
                if m is not None:
                    for t in p.triggers:
                        if t not in found:
                            found[t] = self._result(t, "pattern", m.group(0), m.span())
        for t_index, above in self._turns:
            if turn > above and t_index not in found:
                found[t_index] = self._result(t_index, "turns_above", f"turn {turn}", None)
        return sorted(found.values(), key=lambda r: (r.priority, r.order))

    def best(self, text: str, *, turn: int) -> TriggerMatch | None:
        """The trigger that fires: lowest priority number, then first declared; None if none."""
        matches = self.match(text, turn=turn)
        return matches[0] if matches else None

    def _scan_phrases(self, text: str, found: dict[int, TriggerMatch]) -> None:
        assert self._scan is not None
        low = fold_case(text)
        seen: set[int] = set()
        group_det, shadows = self._group_det, self._shadows
        for m in self._scan.finditer(" " + low):
            g = m.lastindex or 0
            d = group_det[g]
            start = m.start()  # the consumed \W is at start-1 in the text (" " is prepended)
            if d not in seen:
                seen.add(d)
                self._record(d, text, start, m.end(g) - 1, found)
            for other in shadows[d]:
                if other in seen:
                    continue
                om = self._det_regex[other].match(low, start)
                if om is not None:
                    seen.add(other)
                    self._record(other, text, start, om.end(), found)

    def _record(
        self, d: int, text: str, start: int, end: int, found: dict[int, TriggerMatch]
    ) -> None:
        for use in self._det_uses[d]:
            if use.trigger not in found:
                found[use.trigger] = self._result(
                    use.trigger, use.kind, text[start:end], (start, end)
                )

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
