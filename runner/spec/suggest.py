"""'Did you mean ...?': the closest known name to an unknown one, for error messages.

Role in the flow: the loader suggests a kind, field or value close to a misspelt one
(`load_documents`), the checks a declared name close to an unknown reference, target or trigger
(`runner.spec.checks`).

Invariant: difflib is imported only when a suggestion is wanted, i.e. when something is unknown,
never on a valid run.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the candidate closest to `word` (difflib's ratio >= 0.6, the
    first in `candidates` on a tie), or "" when none is close enough."""
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
