"""Routing text: case folding, tokenizer tables and the regexes of keyword/phrase detectors.

Role: the text half of trigger matching (runner.runtime.routing_matcher compiles with it;
runner.runtime.routing re-exports it). A keyword or requested phrase becomes a tuple of units:
single characters of its case-folded text, and `_WS` (a run of whitespace, between a keyword's
words) or `_NW` (a run of non-word characters, between a phrase's words). From the units come
the detector's reference regex (`keyword_regex`/`requested_regex`), its literal-first compiled
regex (`_detector_regex`, same matches) and its words (`_unit_words`, each a whole \\w+ run of
any text it matches). The byte tables tokenize an ASCII text at C level (`bytes.translate` +
`split`) into exactly its lowercased \\w+ runs.

Invariants: `fold_case` keeps length (spans in the folded text are spans in the original);
every regex here is meant to run on `fold_case(text)` and is bounded by (?<!\\w)/(?!\\w);
pure functions and constant tables, no state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["fold_case", "keyword_regex", "requested_regex"]

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


# ASCII texts are tokenized with one bytes.translate + split: A-Z folds to a-z, every other
# non-word byte becomes a space, so the pieces are exactly the lowercased \w+ runs.
_ASCII_WORDS = bytes(
    b + 32 if 65 <= b <= 90 else b if b >= 128 or chr(b).isalnum() or b == 95 else 32
    for b in range(256)
)
_MARK_HIGH = bytes(range(128)) + b"\x80" * 128
_MAX_ODD = 24  # more pieces with non-ASCII characters: tokenize the whole text with findall


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
