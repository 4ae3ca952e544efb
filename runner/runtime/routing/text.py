"""Routing text: case folding, the units and regexes of keyword/phrase detectors, tokenizing.

Role: the text half of trigger matching (`runner.runtime.routing.compiled` builds detectors with
it, `runner.runtime.routing.matcher` tokenizes messages with it). A keyword or requested phrase
becomes a tuple of units: single characters of its case-folded text, and `_WS` (a run of
whitespace, between a keyword's words) or `_NW` (a run of non-word characters, between a
phrase's words). From the units come the detector's reference regex
(`keyword_regex`/`requested_regex`), its literal-first compiled regex (`detector_regex`, same
matches) and its words (`unit_words`, each a whole \\w+ run of any text it matches).
`Vocabulary.present` finds which of a matcher's words are whole \\w+ runs of a message: the byte
tables here tokenize an ASCII text at C level (`bytes.translate` + `split`) into exactly its
lowercased \\w+ runs.

Invariants: `fold_case` keeps length (spans in the folded text are spans in the original);
every regex here is meant to run on `fold_case(text)` and is bounded by (?<!\\w)/(?!\\w);
pure functions, constant tables and immutable vocabularies, no state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "NO_WORDS",
    "Vocabulary",
    "detector_regex",
    "fold_case",
    "keyword_regex",
    "keyword_units",
    "requested_regex",
    "requested_units",
    "unit_words",
]

_WS = "\x00ws"  # unit: a run of whitespace (keywords)
_NW = "\x00nw"  # unit: a run of non-word characters (requested phrases)
_UNIT_RE = {_WS: r"\s+", _NW: r"\W+"}
_WORD = re.compile(r"\w")
_WORDS = re.compile(r"\w+")
NO_WORDS: frozenset[str] = frozenset()


def fold_case(text: str) -> str:
    """`text` lowercased character by character, same length (U+0130 stays as it is)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def keyword_units(keyword: str) -> tuple[str, ...]:
    units: list[str] = []
    for i, token in enumerate(fold_case(keyword).split()):
        if i:
            units.append(_WS)
        units.extend(token)
    return tuple(units)


def requested_units(phrase: str) -> tuple[str, ...]:
    words = _WORDS.findall(fold_case(phrase))
    if not words:  # only punctuation: match it like a keyword
        return keyword_units(phrase)
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
    return re.compile(r"(?<!\w)" + _units_source(keyword_units(keyword)) + r"(?!\w)")


def requested_regex(phrase: str) -> re.Pattern[str]:
    """The stand-alone regex of one requested phrase, to run on `fold_case(text)`."""
    return re.compile(r"(?<!\w)" + _units_source(requested_units(phrase)) + r"(?!\w)")


# ASCII texts are tokenized with one bytes.translate + split: A-Z folds to a-z, every other
# non-word byte becomes a space, so the pieces are exactly the lowercased \w+ runs.
_ASCII_WORDS = bytes(
    b + 32 if 65 <= b <= 90 else b if b >= 128 or chr(b).isalnum() or b == 95 else 32
    for b in range(256)
)
_MARK_HIGH = bytes(range(128)) + b"\x80" * 128
# ASCII word bytes kept (letters folded), every other byte -- non-ASCII ones too -- blanked.
_ASCII_RUNS = bytes(b if b < 128 else 32 for b in _ASCII_WORDS)
_MAX_ODD = 24  # more pieces with non-ASCII characters: tokenize the whole text with findall


def detector_regex(units: tuple[str, ...]) -> re.Pattern[str]:
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


def unit_words(units: tuple[str, ...]) -> tuple[str, ...]:
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


class Vocabulary:
    """The words a matcher listens for (every word of its keywords, phrases and pattern token
    requirements), and which of them a message holds as whole \\w+ runs."""

    __slots__ = ("_encoded", "words")

    def __init__(self, words: Iterable[str]) -> None:
        self.words: frozenset[str] = frozenset(words)
        self._encoded: frozenset[bytes] = frozenset(w.encode() for w in self.words)

    def present(self, text: str) -> frozenset[str]:
        """The vocabulary words that are whole \\w+ runs of `fold_case(text)`.

        One C-level pass: UTF-8 bytes, ASCII letters folded and other ASCII non-word bytes
        blanked by `bytes.translate`, split on blanks. A piece without non-ASCII bytes is a
        word run; pieces with some (accents, curly quotes, emoji) are folded and re-split
        with \\w+ (or the whole text is, when there are many, or a U+03A3 whose lowercase
        depends on its neighbours).
        """
        if text.isascii():
            hits = self._encoded.intersection(text.encode().translate(_ASCII_WORDS).split())
            return frozenset([h.decode() for h in hits]) if hits else NO_WORDS
        if "\u03a3" in text:  # final sigma folds by context: fold the whole text
            return self.words.intersection(_WORDS.findall(fold_case(text)))
        blanked = text.encode().translate(_ASCII_WORDS)
        found = {h.decode() for h in self._encoded.intersection(blanked.split())}
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
            found.update(self.words.intersection(_WORDS.findall(fold_case(piece))))  # context
            at = marked.find(b"\x80", end)
        return self.words.intersection(_WORDS.findall(fold_case(text)))  # many such pieces

    def ascii_runs(self, text: str) -> frozenset[str] | None:
        """The vocabulary words that are whole ASCII word runs (`[A-Za-z0-9_]+`, lowercased) of
        a non-ASCII `text`: what RE2's ASCII `\\b` and `\\w` delimit, so the runs every
        pattern match needs (`token_requirement`) are among them. None when the text holds
        U+212A or U+017F, which RE2's `(?i)` equates with k and s: a match may then hold a
        non-ASCII character where the requirement says an ASCII letter. One C-level pass."""
        if "\u212a" in text or "\u017f" in text:
            return None
        hits = self._encoded.intersection(text.encode().translate(_ASCII_RUNS).split())
        return frozenset([h.decode() for h in hits]) if hits else NO_WORDS
