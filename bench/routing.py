"""Benchmark: time to decide a handoff with 200 triggers on a 2 KB message.

Compiled: `routing.decide_handoff` with the member's `TriggerMatcher` (one trie regex scan for
all keywords and phrases, prefiltered patterns). Baseline: a naive loop over the triggers in
priority order, each trigger's regexes compiled beforehand but evaluated one by one, stopping
at the first trigger that holds. Target: compiled p99 under 100 us.

Run: /work/venv/bin/python bench/routing.py [--iterations N] [--seed S]
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from runner.runtime.routing import compile_triggers, decide_handoff
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    words = vocabulary(rng, 3000)
    rng.shuffle(words)
    specs = build_triggers(rng, words[:1500])
    filler = words[1500:]
    triggers = [HandoffTrigger.model_validate(s) for s in specs]
    kw_hit = next(t for t in triggers if t.when.keywords).when.keywords
    assert kw_hit is not None
    message = build_message(rng, filler, [kw_hit[0].upper(), "ABC-12345"])
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
    fast = matcher.best(message, turn=3)
    assert fast is not None and fast.trigger == naive(message, 3), (fast, naive(message, 3))
    kinds = {
        k: sum(1 for s in specs if k in s["when"])
        for k in ("keywords", "requested", "pattern", "turns_above")
    }
    print(
        f"triggers: {len(triggers)} {kinds}; message: {len(message)} chars; "
        f"matches: {len(matcher.match(message, turn=3))}; compile: {compile_ms:.1f} ms"
    )

    def decide() -> object:
        return decide_handoff(
            team, current_agent="front", text=message, turn=3, workloads={}, matchers=matchers
        )

    rows = [
        ("compiled decide_handoff", timed(decide, args.iterations)),
        ("compiled match (all)", timed(lambda: matcher.match(message, turn=3), args.iterations)),
        ("naive loop best", timed(lambda: naive(message, 3), max(200, args.iterations // 10))),
    ]
    for label, (p50, p99) in rows:
        print(f"{label:26s} p50 {p50:9.1f} us   p99 {p99:9.1f} us")
    (c50, c99), (n50, n99) = rows[0][1], rows[2][1]
    print(
        f"speedup (naive / compiled decide): p50 x{n50 / c50:.1f}, p99 x{n99 / c99:.1f}; "
        f"target p99 < 100 us: {'met' if c99 < 100 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
