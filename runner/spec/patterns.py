"""User-written regular expressions, matched in linear time (RE2 through `google-re2`).

Role in the flow: the spec models check every handoff-trigger and escalation `pattern` with
`check_pattern` (a pattern RE2 cannot run is a problem at its file:line:col); the runtime's
routing compiles them with `compile_pattern` once per team revision; a preference schema's
`pattern` is matched with it too (`runner.spec.preference_values`). A pattern therefore costs
time linear in the message, whatever it says: `(a+)+$` on a long message decides at once.

Syntax and meaning are RE2's (https://github.com/google/re2/wiki/Syntax), close to Python's for
what triggers use: no backreferences (`\\1`, `(?P=name)`), no lookaround (`(?=`, `(?!`, `(?<=`,
`(?<!`), no atomic groups or possessive repeats, no `(?x)`; `\\z` instead of `\\Z`; `\\w`, `\\d`,
`\\s` and `\\b` are ASCII (use `\\p{L}` for any letter); `$` is the end of the text (`(?m)$` the
end of a line); `(?i)` folds case by Unicode's simple folding.

Invariants: this is the only module that imports `re2`, and only when a pattern is compiled
(a project without patterns never pays for it); RE2 logs nothing to stderr (`log_errors` off);
a compiled pattern is cached by its source text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

__all__ = [
    "MatchLike",
    "PatternLike",
    "PatternSyntaxError",
    "check_pattern",
    "compile_pattern",
]

# RE2's memory for one compiled pattern (its default): a pattern whose program is bigger is a
# syntax problem (`pattern too large`), never a slow match.
_MAX_MEM = 8 << 20

# What RE2 says -> what to write instead.
_HINTS: tuple[tuple[str, str], ...] = (
    ("(?<=", "lookbehind is not supported"),
    ("(?<!", "lookbehind is not supported"),
    ("(?=", "lookahead is not supported"),
    ("(?!", "lookahead is not supported"),
    ("(?P=", "backreferences are not supported"),
    ("(?>", "atomic groups are not supported"),
    ("(?x", "verbose mode (?x) is not supported"),
    ("\\Z", "write \\z for the end of the text"),
)


class MatchLike(Protocol):
    """What a match of a compiled pattern offers (a subset of `re.Match`)."""

    def group(self, index: int = 0, /) -> Any: ...
    def span(self, index: int = 0, /) -> tuple[int, int]: ...
    def start(self, index: int = 0, /) -> int: ...
    def end(self, index: int = 0, /) -> int: ...


class PatternLike(Protocol):
    """What a compiled pattern offers (a subset of `re.Pattern`)."""

    @property
    def pattern(self) -> Any: ...
    def search(self, text: str, pos: int = ..., endpos: int = ..., /) -> MatchLike | None: ...
    def match(self, text: str, pos: int = ..., endpos: int = ..., /) -> MatchLike | None: ...


class PatternSyntaxError(ValueError):
    """A pattern RE2 cannot run: `message` says why, `offset` where in the pattern (or None)."""

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def _options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = _MAX_MEM
    return options


@lru_cache(maxsize=2048)
def compile_pattern(source: str) -> PatternLike:
    """`source` compiled by RE2; PatternSyntaxError when RE2 cannot run it."""
    import re2

    try:
        compiled: PatternLike = re2.compile(source, _options())
    except re2.error as exc:
        raise _syntax_error(source, exc) from None
    return compiled


def check_pattern(value: str) -> str:
    """`value`, or ValueError (a PatternSyntaxError) saying why RE2 cannot run it."""
    compile_pattern(value)
    return value


def _syntax_error(source: str, exc: Exception) -> PatternSyntaxError:
    raw = exc.args[0] if exc.args else str(exc)
    said = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    # RE2 says `<what>: <the offending fragment>`; the fragment locates the problem.
    _what, _sep, fragment = said.partition(": ")
    offset = source.find(fragment) if fragment else -1
    hint = None
    for mark, text in _HINTS:  # RE2 may quote less than the construct (`(?P` for `(?P=x)`)
        if fragment and (fragment.startswith(mark) or mark.startswith(fragment)):
            at = source.find(mark)
            if at >= 0:
                offset, hint = at, text
                break
    if hint is None and len(fragment) >= 2 and fragment[0] == "\\" and fragment[1].isdigit():
        hint = "backreferences are not supported"
    where = f" at character {offset + 1}" if offset >= 0 else ""
    message = f"invalid regular expression '{source}'{where}: {said}"
    if hint is not None:
        message += f" ({hint}: patterns run on RE2, which matches in linear time)"
    return PatternSyntaxError(message, offset if offset >= 0 else None)
