"""The checks' shortcuts answer as the full rules do."""

from __future__ import annotations

import random

from runner.providers.base import AGENT_NAME_RE
from runner.spec.checks.foundry import foundry_name_problem


def _reference(name: str) -> str | None:
    """foundry_name_problem without its shortcut for valid names."""
    if not name:
        return "it is empty"
    if len(name) > 63:
        return f"it is {len(name)} characters long (at most 63)"
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
    if bad:
        return "it may only hold letters, digits and '-' (found " + ", ".join(map(repr, bad)) + ")"
    if not AGENT_NAME_RE.match(name):
        return "it must start and end with a letter or digit"
    return None


def test_foundry_name_problem_matches_the_full_rules() -> None:
    rng = random.Random(11)
    alphabet = ["a", "Z", "0", "9", "-", "_", ".", " ", "\n", "é", "٣", "ß", "-a", "a-"]
    names = ["", "a", "-", "a-", "-a", "a-b", "a\n", "x" * 63, "x" * 64, "a" + "-" * 61 + "b"]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70))) for _ in range(5000)]
    for name in names:
        assert foundry_name_problem(name) == _reference(name), repr(name)
