"""Pattern prefilters: when a trigger's `pattern` regex need not be searched at all.

Role: compile-time analysis of a pattern (`runner.runtime.routing.compiled` calls it once per
distinct pattern) and the run-time gate around its search. The pattern itself runs on RE2
(`runner.spec.patterns`), linear in the text; the prefilters save even that search. Two
prefilters come from parsing the regex with the stdlib's `re._parser` (RE2's syntax, where
both engines read a pattern alike; a pattern only RE2 reads gets no prefilter):
  - `required_literals`: strings one of which every match contains (with how far after the
    match start it begins at most); `PatternDetector.search` skips the search when none occurs.
  - `token_requirement`: lowercased words one of which every match needs as a whole \\w+ run;
    the matcher skips the pattern when none of them is among the message's ASCII word runs
    (RE2's `\\b` and `\\w` are ASCII; for an ASCII text, its tokens).

Invariants: sound by construction (a prefilter may let a non-matching text through, never
stop a matching one): `PatternDetector.search(text, ...)` returns exactly
`regex.search(text)`. Anything unparsable or unexpected yields no prefilter (always search).
"""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass
from typing import Any

from runner.spec.patterns import MatchLike, PatternLike

__all__ = [
    "PatternDetector",
    "has_exotic_case",
    "pattern_fold",
    "required_literals",
    "token_requirement",
]


def pattern_fold(text: str) -> str:
    """Fold for IGNORECASE prefilters, same length as `text`: every re.IGNORECASE equivalent of
    an ASCII letter maps to its lowercase (U+0130 -> i, U+0131 -> i, U+017F -> s, U+212A -> k)."""
    if text.isascii():
        return text.lower()
    return text.replace("\u0130", "i").lower().replace("\u0131", "i").replace("\u017f", "s")


_MAX_ALTERNATIVES = 16
_UNBOUNDED = 1 << 16


def _parse(pattern: str, flags: int) -> tuple[Any, Any]:
    """The stdlib parser module and `pattern` parsed by it, quietly. A POSIX class (`[[:alpha:]]`)
    is RE2 syntax Python reads as something else: such a pattern is not parsed (ValueError)."""
    if "[:" in pattern:
        raise ValueError("RE2-only syntax")
    parser: Any = importlib.import_module("re._parser")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parser, parser.parse(pattern, flags)


_Found = tuple[frozenset[str], int | None]  # literals, max offset from the match start


@dataclass(frozen=True, slots=True)
class PatternDetector:
    """One distinct pattern, the triggers using it, and its literal prefilter.

    Every match of `regex` contains one of `literals` (looked for in the case-folded text
    when `folded`), starting at most `max_offset` characters after the match's start (None:
    unbounded). No literals: always searched.
    """

    triggers: tuple[int, ...]
    regex: PatternLike
    literals: tuple[str, ...] | None
    folded: bool
    max_offset: int | None

    def search(self, text: str, folded_text: str | None) -> MatchLike | None:
        """`regex.search(text)`, exactly, skipped when no required literal occurs. One RE2
        search is linear in the text, so the literals only gate it (`max_offset` is what the
        analysis found; no per-start matching is needed)."""
        if self.literals is None:
            return self.regex.search(text)
        hay = text if not self.folded else folded_text or pattern_fold(text)
        for lit in self.literals:
            if lit in hay:
                return self.regex.search(text)
        return None


def has_exotic_case(text: str) -> bool:
    """Holds U+017F, U+0131 or U+0130: IGNORECASE-equal to an ASCII letter, not folded to it by
    `fold_case` (U+212A, the Kelvin sign, folds to "k" and is fine). Such texts skip the token
    prefilter of patterns. O(1) for ASCII and Latin-1 texts (no character that wide)."""
    return "\u017f" in text or "\u0131" in text or "\u0130" in text


def required_literals(pattern: str, flags: int) -> tuple[tuple[str, ...] | None, bool, int | None]:
    """Strings one of which every match of `pattern` contains, whether they are to be looked
    for in the folded text, and how far after the match start they begin at most.

    Sound by construction: only literal runs that any match must contain are used (a literal
    run in a sequence, a group, a repeat of at least one, every branch of an alternation); a
    case-insensitive literal is used only when ASCII. Offsets add the widest width of what
    precedes. (None, False, None) when nothing is required.
    """
    try:
        parser, parsed = _parse(pattern, flags)
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
        {pattern_fold(s) if folded else s for s in found[0]}, key=lambda s: (-len(s), s)
    )
    return tuple(literals), folded, found[1]


_MAX_TOKENS = 32


def token_requirement(pattern: str, flags: int) -> frozenset[str] | None:
    """Lowercased words one of which is a whole \\w+ run of any ASCII text `pattern` matches in.

    Found where the pattern has a finite, small set of ASCII word strings (literals, small
    classes, short repeats, alternations) with a guard on both sides: `\\b`, `^`/`$`/`\\A`/`\\Z`,
    or a character (class) that cannot be an ASCII word character. Such a string is then a
    maximal word run of the text, so, lowercased, one of the text's tokens (`fold_case`).
    Sound for the ASCII word runs of any text without U+212A or U+017F (what the matcher gates
    on: `Vocabulary.ascii_runs`; for ASCII texts, the tokens themselves): RE2's `\\b` and `\\w`
    are ASCII. Never derived under re.ASCII. None when not found.
    """
    try:
        _parser, parsed = _parse(pattern, flags)
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
