"""Benchmark: time to decide a handoff with 200 triggers (and a catastrophic one) on a 2 KB message.

Compiled: `routing.decide_handoff` with the member's `TriggerMatcher` (the message tokenized
once by bytes.translate + split, keyword/phrase words looked up as a set intersection, regexes
only to confirm candidates; patterns gated by required words or literals, evaluated lazily in
priority order). Baseline: a naive loop over the triggers in priority order, each trigger's
regexes compiled beforehand but evaluated one by one, stopping at the first trigger that holds.
Target: compiled p99 under 100 us. Patterns run on RE2 (`runner.spec.patterns`), linear in the
message; the naive baseline runs them on Python's backtracking `re`.

Every row's member also has a 201st trigger, `pattern: '(a+)+$'` (issue 9: with `re`, a
24-character run of a's took 1.1 s, doubling per character). Row `a-run` is the no-trigger
message holding a run of a's followed by '!': the naive baseline pays the backtracking on a
run of `--a-run` (default 16) characters, the compiled matcher is timed on that message and on
one whose run is 1,000 characters (`a-run 1000`, no baseline: `re` would not finish).

Messages (2 KB each): `hit` (a keyword of a priority-8 trigger in capitals and a ticket id a
priority-1 pattern matches), `no trigger` (the common case: nothing fires, every trigger is
considered), `non-ASCII` (the no-trigger message with accents, curly quotes and an emoji: the
slower tokenizer path).

Noise: the machine is shared, so each row is measured in `--rounds` rounds and the round with
the lowest p99 is reported, with the worst round's p99 next to it (best-of-N is a noise
reduction, not a different measure; the target line says which rounds met it).

Run: /work/venv/bin/python bench/routing.py [--iterations N] [--rounds R] [--seed S]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from runner.runtime.routing import TriggerMatcher, compile_triggers, decide_handoff
from runner.spec.models import HandoffTrigger, Team

SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "ta",
    "shi",
    "po",
    "be",
    "da",
    "ve",
    "fu",
    "zo",
    "gri",
    "pla",
    "tor",
    "men",
    "sel",
    "van",
    "qua",
)


def vocabulary(rng: random.Random, n: int) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def build_triggers(rng: random.Random, words: Sequence[str]) -> list[dict[str, Any]]:
    """200 triggers: 110 keyword, 50 requested-phrase, 30 pattern, 10 turns_above."""
    pool = iter(words)
    out: list[dict[str, Any]] = []

    def phrase(k: int) -> str:
        return " ".join(next(pool) for _ in range(k))

    for i in range(110):
        kws = [phrase(rng.choice((1, 1, 1, 2))) for _ in range(rng.randint(1, 3))]
        out.append({"when": {"keywords": kws}, "n": i})
    for i in range(50):
        out.append({"when": {"requested": [phrase(rng.randint(2, 4)) for _ in range(2)]}, "n": i})
    templates: list[Callable[[], str]] = [
        lambda: rf"\b({next(pool)}|{next(pool)}|{next(pool)}s?)\b",
        lambda: rf"{next(pool)}\s+#?\d{{4,}}",
        lambda: rf"\b{next(pool).capitalize()}-\d{{5}}\b",
        lambda: rf"(?i)\b{next(pool)}\w*\b",
        lambda: r"[A-Z]{3}-\d{5}",
    ]
    for i in range(30):
        out.append({"when": {"pattern": templates[i % len(templates)]()}, "n": i})
    for i in range(10):
        out.append({"when": {"turns_above": 50 + i}, "n": i})
    rng.shuffle(out)
    return [
        {
            "name": f"trigger-{i}",
            "when": t["when"],
            "target": f"spec-{i % 5}",
            "priority": rng.randint(1, 9),
        }
        for i, t in enumerate(out)
    ]


CATASTROPHIC = "(a+)+$"


def build_message(rng: random.Random, filler: list[str], hits: Sequence[str]) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < 2048:
        w = rng.choice(filler)
        r = rng.random()
        parts.append(w.capitalize() if r < 0.1 else w + rng.choice(",.!?") if r < 0.2 else w)
    for h in hits:
        parts.insert(rng.randrange(len(parts)), h)
    return " ".join(parts)[:2048]


def naive_best(triggers: Sequence[HandoffTrigger]) -> Callable[[str, int], str | None]:
    compiled: list[tuple[str, list[re.Pattern[str]], int | None]] = []
    for t in sorted(triggers, key=lambda t: t.priority):  # stable: declaration order on ties
        rxs = [
            re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, k.split())) + r"(?!\w)", re.I)
            for k in t.when.keywords or ()
        ]
        rxs += [
            re.compile(
                r"(?<!\w)" + r"\W+".join(map(re.escape, re.findall(r"\w+", p))) + r"(?!\w)", re.I
            )
            for p in t.when.requested or ()
        ]
        if t.when.pattern is not None:
            rxs.append(re.compile(t.when.pattern))
        compiled.append((t.name, rxs, t.when.turns_above))

    def best(text: str, turn: int) -> str | None:
        for name, rxs, above in compiled:
            if above is not None and turn > above:
                return name
            for rx in rxs:
                if rx.search(text):
                    return name
        return None

    return best


def timed(fn: Callable[[], object], iterations: int) -> tuple[float, float]:
    for _ in range(min(200, iterations)):
        fn()
    samples = []
    gc.disable()
    try:
        for _ in range(iterations):
            t0 = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def matcher_of(triggers: Sequence[HandoffTrigger]) -> TriggerMatcher:
    key = tuple(t.name for t in triggers)
    if key not in _MATCHERS:
        _MATCHERS[key] = compile_triggers(triggers)
    return _MATCHERS[key]


_MATCHERS: dict[tuple[str, ...], TriggerMatcher] = {}


def rounds(fn: Callable[[], object], iterations: int, n: int) -> tuple[float, float, float, int]:
    """p50 and p99 of the round with the lowest p99, the worst round's p99, rounds under 100 us."""
    results = [timed(fn, iterations) for _ in range(n)]
    best = min(results, key=lambda r: r[1])
    return best[0], best[1], max(r[1] for r in results), sum(1 for r in results if r[1] < 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--a-run", type=int, default=16, help="a's before '!' in row a-run")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    words = vocabulary(rng, 3000)
    rng.shuffle(words)
    specs = build_triggers(rng, words[:1500])
    filler = words[1500:]
    specs.append(
        {
            "name": "catastrophic",
            "when": {"pattern": CATASTROPHIC},
            "target": "spec-0",
            "priority": 9,
        }
    )
    triggers = [HandoffTrigger.model_validate(s) for s in specs]
    kw_hit = next(t for t in triggers if t.when.keywords).when.keywords
    assert kw_hit is not None
    message = build_message(rng, filler, [kw_hit[0].upper(), "ABC-12345"])
    quiet = build_message(rng, filler, [])
    while matcher_of(triggers).best(quiet, turn=3) is not None:  # filler can match a pattern
        quiet = build_message(rng, filler, [])
    accented = build_message(rng, filler, ["caf\u00e9", "\u201cna\u00efve\u201d", "\U0001f642"])
    while matcher_of(triggers).best(accented, turn=3) is not None:
        accented = build_message(rng, filler, ["caf\u00e9", "\u201cna\u00efve\u201d", "\U0001f642"])
    mid = len(quiet) // 2
    a_run = quiet[:mid] + " " + "a" * args.a_run + "!" + quiet[mid + args.a_run + 2 :]
    long_run = (quiet[:500] + " " + "a" * 1000 + "! " + quiet[1502:])[:2048]
    for text in (a_run, long_run):
        assert matcher_of(triggers).best(text, turn=3) is None
    team = Team.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Team",
            "name": "bench",
            "members": [
                {"agent": "front", "specialization": "front", "handoff_triggers": specs},
                *[{"agent": f"agent-{i}", "specialization": f"spec-{i}"} for i in range(5)],
            ],
        }
    )
    t0 = time.perf_counter_ns()
    matcher = compile_triggers(triggers)
    compile_ms = (time.perf_counter_ns() - t0) / 1e6
    matchers = {"front": matcher}
    naive = naive_best(triggers)
    for text in (message, quiet, accented, a_run):
        fast = matcher.best(text, turn=3)
        assert (fast.trigger if fast else None) == naive(text, 3), (fast, naive(text, 3))
    kinds = {
        k: sum(1 for s in specs if k in s["when"])
        for k in ("keywords", "requested", "pattern", "turns_above")
    }
    print(
        f"triggers: {len(triggers)} {kinds}; message: {len(message)} chars; "
        f"matches: {len(matcher.match(message, turn=3))}; compile: {compile_ms:.1f} ms; "
        f"load average: {os.getloadavg()[0]:.2f}; best of {args.rounds} rounds"
    )

    def decide(text: str) -> Callable[[], object]:
        return lambda: decide_handoff(
            team, current_agent="front", text=text, turn=3, workloads={}, matchers=matchers
        )

    n, slow_n = args.iterations, max(200, args.iterations // 10)
    scenarios = [
        ("hit", message),
        ("no trigger", quiet),
        ("non-ASCII", accented),
        ("a-run", a_run),
    ]
    verdicts = []
    for name, text in scenarios:
        compiled = rounds(decide(text), n, args.rounds)
        every = rounds(lambda text=text: matcher.match(text, turn=3), n, args.rounds)  # type: ignore[misc]
        base_n = slow_n if name != "a-run" else max(20, slow_n // 20)
        base = rounds(lambda text=text: naive(text, 3), base_n, args.rounds)  # type: ignore[misc]
        for label, (p50, p99, worst, _ok) in (
            ("compiled decide_handoff", compiled),
            ("compiled match (all)", every),
            ("naive loop best", base),
        ):
            print(
                f"{name:10s} {label:24s} p50 {p50:8.1f} us   p99 {p99:8.1f} us"
                f"   (worst round p99 {worst:8.1f} us)"
            )
        print(
            f"{name:10s} speedup (naive / compiled decide): p50 x{base[0] / compiled[0]:.1f}, "
            f"p99 x{base[1] / compiled[1]:.1f}"
        )
        verdicts.append((name, compiled))
    compiled = rounds(decide(long_run), n, args.rounds)
    print(
        f"{'a-run 1000':10s} {'compiled decide_handoff':24s} p50 {compiled[0]:8.1f} us   "
        f"p99 {compiled[1]:8.1f} us   (worst round p99 {compiled[2]:8.1f} us)"
    )
    verdicts.append(("a-run 1000", compiled))
    met = all(c[1] < 100 for _name, c in verdicts)
    print(
        f"target p99 < 100 us: {'met' if met else 'MISSED'} ("
        + ", ".join(
            f"{name}: p99 {c[1]:.1f} us, {c[3]}/{args.rounds} rounds" for name, c in verdicts
        )
        + ")"
    )


if __name__ == "__main__":
    main()
