"""Issue 9 finding 5: catastrophic trigger and escalation patterns route in linear time (RE2).

`pattern: '(a+)+$'` validated, and a 24-character message made one routing decision take 1.1 s
with Python's backtracking engine, doubling per character. Here the same pattern decides on a
100,000-character message: with backtracking that would take longer than the universe's age,
so finishing at all (the thread is given a very generous minute) is the proof.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from runner.runtime.escalation import evaluate_levels
from runner.runtime.routing import compile_triggers
from runner.spec.models import EscalationPath, HandoffTrigger
from runner.spec.patterns import PatternSyntaxError, compile_pattern

CATASTROPHIC = ["(a+)+$", "(a|aa)+$", "(a*)*b", "^(\\w+\\s?)*$", "(x+x+)+y"]


def finishes(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "a backtracking engine is matching the pattern"
    return out[0]


def trigger(pattern: str, name: str = "t") -> HandoffTrigger:
    return HandoffTrigger.model_validate(
        {"name": name, "target": "x", "priority": 1, "when": {"pattern": pattern}}
    )


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_trigger_pattern_routes_a_long_message(pattern: str) -> None:
    matcher = compile_triggers([trigger(pattern)])
    message = "a" * 100_000 + "!"
    assert finishes(lambda: matcher.best(message, turn=1)) is None
    assert finishes(lambda: matcher.match(message, turn=1)) == []


def test_catastrophic_pattern_still_matches_what_it_says() -> None:
    matcher = compile_triggers([trigger("(a+)+$")])
    hit = matcher.best("b" + "a" * 50_000, turn=1)
    assert hit is not None and hit.span == (1, 50_001)


def test_catastrophic_escalation_pattern() -> None:
    path = EscalationPath.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "EscalationPath",
            "name": "p",
            "levels": [{"level": 1, "target": "human", "when": {"pattern": "(a+)+$"}}],
        }
    )

    def evaluate(text: str) -> Any:
        return evaluate_levels(path, fired_trigger=None, turn=1, text=text, no_free_member=False)

    assert finishes(lambda: evaluate("a" * 100_000 + "!")) is None
    found = evaluate("a" * 1000)
    assert found is not None and found.level == 1


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        (r"(a)\1", "backreferences are not supported"),
        (r"(?P<x>a)(?P=x)", "backreferences are not supported"),
        (r"(?<=a)b", "lookbehind is not supported"),
        (r"(?<!a)b", "lookbehind is not supported"),
        (r"a(?=b)", "lookahead is not supported"),
        (r"a(?!b)", "lookahead is not supported"),
        (r"(?>a)", "atomic groups are not supported"),
        (r"a\Z", "write \\z"),
        ("[a", None),
        ("a{1001}", None),
    ],
)
def test_unsupported_syntax_is_a_clear_error(pattern: str, hint: str | None) -> None:
    with pytest.raises(PatternSyntaxError) as info:
        compile_pattern(pattern)
    assert "invalid regular expression" in info.value.message
    assert info.value.offset is not None and 0 <= info.value.offset < len(pattern)
    if hint is not None:
        assert hint in info.value.message
    with pytest.raises(ValueError, match="invalid regular expression"):
        trigger(pattern)


def test_re2_writes_nothing_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PatternSyntaxError):
        compile_pattern(r"(a)\2")
    assert capfd.readouterr().err == ""
