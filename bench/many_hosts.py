"""Benchmark: many runtime processes sharing one pool on PostgreSQL + Redis (issue 12).

One run, rounds of two measurements of the same workload (2,000 session attempts on one pool,
limited to 20 concurrent sessions and 20,000 tokens per minute), back to back:

  baseline    one runtime process on SQLite, limits in the process (the default)
  many hosts  4 runtime processes sharing one state database on PostgreSQL (a database of the
              run's own on the local server, `state: ${BENCH_STATE}`, made and dropped here)
              and the pool's limits and events through a private redis-server (started here on
              a free loopback port, emptied between rounds). They share one local provider
              store too: the stand-in for the one Foundry project every host talks to.

An attempt: create a session on `general-agent-1` (waiting up to 60 s for a slot), hold it a
random 0-20 ms, send one turn (refused when the token budget is spent: counted, not waited
for), end it. Every process runs `--concurrency` attempts at once (the baseline: all of them),
so the processes ask for more slots than the pool has. A process's time ends when its last
attempt ended and its write-behind pass wrote what it held (`lc.flush()`).

Checked, from both sides, every round:
  - concurrency: every process logs when each session was admitted and when it started to end
    it (log side: intervals inside the real holding, on one host's clock); the largest overlap
    of all processes' intervals, and a sampler reading the pool's lease set in Redis every few
    ms (Redis side): 0 moments above 20;
  - tokens: every turn's tokens (as the provider reported them) with their time; the largest
    sum over any 60 s window must be within 20,000.
Printed: full session lifecycles per second, many hosts as a ratio of the baseline (the median
of the rounds' ratios: each pair shares the machine's load of its moment). Target >= 0.5 on a
2-core machine. And where the time goes, per lifecycle: CPU of the runner processes (both
sides), of the database's backends (and its WAL writer) and of redis-server, the database's
transactions and rows written, Redis commands (the scripts' own included), the mean wall time
of a turn and of an end; `--profile PREFIX` writes each worker's cProfile (CPU time).

    python bench/many_hosts.py [--attempts 2000] [--processes 4] [--concurrency 8] [--rounds 3]

PostgreSQL: `--postgres` or RUNNER_TEST_POSTGRES_URL (default the local server, user postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from many_hosts_servers import (
    Meter,
    Sampler,
    create_database,
    drop_database,
    start_redis,
)
from runtime import CONTRACT, load_contract

TARGET = 0.5
LIMIT_SESSIONS = 20
LIMIT_TOKENS = 20_000
AUTH = {"user_id": "bench", "workspace_id": "workspace-123", "permissions": ["chat:access"]}

ENV = """
apiVersion: runner/v1
kind: Environment
name: local
provider: local
default: true
data_dir: {data_dir}
"""

POOL = f"""
apiVersion: runner/v1
kind: ResourcePool
name: high-performance
agents: [general-agent-1, tech-agent-1, billing-agent-1]
limits: {{max_concurrent_sessions: {LIMIT_SESSIONS}, max_tokens_per_minute: {LIMIT_TOKENS}}}
"""


# ---------------------------------------------------------------- one runtime process


async def worker(job: dict[str, Any]) -> None:
    from runner import Lifecycle
    from runner.runtime.errors import PoolLimitError, TokenBudgetError

    home = Path(job["home"])
    env = ENV.format(data_dir=job.get("store") or home / "store")
    if job.get("redis"):
        env += f"redis: {job['redis']}\n"
    if job.get("state"):
        env += "state: ${BENCH_STATE}\n"  # a secret by reference, as a deployment writes it
    project = load_contract(CONTRACT, env, POOL)
    result: dict[str, Any] = {
        "created": 0,
        "completed": 0,
        "refused_slots": 0,
        "refused_tokens": 0,
        "held": [],
        "tokens": [],
        "send_s": 0.0,
        "end_s": 0.0,
    }
    environ = {**os.environ, "BENCH_STATE": job.get("state", "")}
    opened = Lifecycle.open(project, env="local", registry_path=home / "state.db", environ=environ)
    async with opened as lc:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        queue = list(range(job["attempts"]))

        async def attempt() -> None:
            try:
                session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH, wait=60)
            except PoolLimitError:
                result["refused_slots"] += 1
                return
            result["created"] += 1
            admitted = time.time()
            await asyncio.sleep(random.uniform(0, job["hold"]))
            sending = time.perf_counter()
            try:
                reply = await session.send("Hi, I need help with my account")
                result["tokens"].append((time.time(), reply.input_tokens + reply.output_tokens))
            except TokenBudgetError:
                result["refused_tokens"] += 1
            ending = time.perf_counter()
            result["held"].append((admitted, time.time()))
            await session.end("done")
            result["send_s"] += ending - sending
            result["end_s"] += time.perf_counter() - ending
            result["completed"] += 1

        async def loop() -> None:
            while queue:
                queue.pop()
                await attempt()

        profile = None
        if job.get("profile"):
            import cProfile

            profile = cProfile.Profile(time.process_time)  # CPU, not waiting
            profile.enable()
        started = time.perf_counter()
        cpu = time.process_time()
        await asyncio.gather(*(loop() for _ in range(job["concurrency"])))
        lc.flush()  # what the write-behind pass still holds is written inside the time
        result["seconds"] = time.perf_counter() - started
        result["cpu"] = time.process_time() - cpu
        if profile is not None:
            profile.disable()
            profile.dump_stats(job["profile"])
        print(json.dumps(result), flush=True)  # the runner measures its servers, then says go
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


# ---------------------------------------------------------------- the run


def run_processes(
    jobs: list[dict[str, Any]], redis_url: str | None, meter: Meter | None = None
) -> tuple[float, list[Any], int]:
    """Start the processes, wait until each is ready, start them together; (wall seconds until
    the last one finished its attempts and wrote what it held, results, the most leases the
    Redis-side sampler saw). `meter` reads the servers' CPU and counters around the run."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            sys.exit(f"bench: a worker did not start: {line!r}")
    sampler = Sampler(redis_url) if redis_url else None
    if meter is not None:
        meter.start()
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip():
            proc.wait(60)
            sys.exit(f"bench: a worker failed ({proc.returncode})")
        results.append(json.loads(line))
    wall = time.perf_counter() - started
    top = sampler.stop() if sampler is not None else 0
    if meter is not None:
        meter.stop(sampler.samples if sampler is not None else 0)
    for proc in procs:
        proc.communicate("close\n", timeout=120)
        if proc.returncode != 0:
            sys.exit(f"bench: a worker failed while closing ({proc.returncode})")
    if meter is not None:
        meter.count_transactions()  # a backend's counts reach the server's statistics at exit
    return wall, results, top


def widest_window(entries: list[tuple[float, int]]) -> int:
    """The largest sum of tokens over any 60 s window."""
    entries.sort()
    best = total = start = 0
    for end in range(len(entries)):
        total += entries[end][1]
        while entries[end][0] - entries[start][0] >= 60.0:
            total -= entries[start][1]
            start += 1
        best = max(best, total)
    return best


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of (admitted, ending) intervals open at one moment."""
    moments = sorted([(a, 1) for a, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, step in moments:  # an end at the same instant as a start counts first (-1 < 1)
        now += step
        best = max(best, now)
    return best


def summary(name: str, wall: float, results: list[Any]) -> dict[str, Any]:
    completed = sum(r["completed"] for r in results)
    tokens = [tuple(t) for r in results for t in r["tokens"]]
    figures = {
        "name": name,
        "completed": completed,
        "refused_slots": sum(r["refused_slots"] for r in results),
        "refused_tokens": sum(r["refused_tokens"] for r in results),
        "turns": len(tokens),
        "top": most_at_once([tuple(h) for r in results for h in r["held"]]),  # type: ignore[misc]
        "widest_60s": widest_window(tokens),  # type: ignore[arg-type]
        "seconds": wall,
        "rate": completed / wall,
        "cpu_ms": 1000 * sum(r["cpu"] for r in results) / max(completed, 1),
        "mean_held": sum(e - a for r in results for a, e in r["held"]) / wall,
        "send_ms": 1000 * sum(r["send_s"] for r in results) / max(completed, 1),
        "end_ms": 1000 * sum(r["end_s"] for r in results) / max(completed, 1),
    }
    print(
        f"  {name:<11} {completed:,} lifecycles in {wall:.1f}s = {figures['rate']:.0f}/s; "
        f"most held at once {figures['top']} (limit {LIMIT_SESSIONS}, mean "
        f"{figures['mean_held']:.1f}); "
        f"turns {figures['turns']:,} (refused by the token budget {figures['refused_tokens']:,});"
        f" widest 60 s window {figures['widest_60s']:,} tokens (limit {LIMIT_TOKENS:,}); "
        f"runner CPU {figures['cpu_ms']:.2f} ms per lifecycle; a turn takes "
        f"{figures['send_ms']:.1f} ms, an end {figures['end_ms']:.1f} ms"
    )
    return figures


def where_time_goes(meter: Meter, many: dict[str, Any]) -> None:
    n = max(many["completed"], 1)
    print(
        f"  per lifecycle: runner processes {many['cpu_ms']:.2f} ms CPU, PostgreSQL "
        f"{1000 * meter.pg_cpu / n:.2f} ms CPU, {meter.transactions / n:.1f} transactions "
        f"writing {meter.rows / n:.1f} rows, "
        f"redis-server {1000 * meter.redis_cpu / n:.2f} ms CPU and {meter.commands / n:.1f} "
        f"commands; wall x 2 cores = {2000 * many['seconds'] / n:.2f} ms"
    )
    top = sorted(meter.by_command.items(), key=lambda kv: -kv[1])[:14]
    print(
        "  Redis commands per lifecycle (those the scripts run too): "
        + ", ".join(f"{k} {v / n:.1f}" for k, v in top)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8, help="attempts at once, per process")
    parser.add_argument("--hold", type=float, default=0.02, help="longest hold (s)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "RUNNER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="the server (a database of the run's own is made on it and dropped)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="baseline + many hosts, each")
    parser.add_argument("--profile", default="", help="cProfile each worker to PREFIX.<name>")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        import faulthandler
        import signal

        faulthandler.register(signal.SIGUSR1, all_threads=True)
        asyncio.run(worker(json.loads(args.worker)))
        return 0
    n = args.processes
    print(
        f"bench many_hosts: {args.attempts:,} attempts, pool of {LIMIT_SESSIONS} sessions "
        f"and {LIMIT_TOKENS:,} tokens/min, holds 0-{args.hold * 1000:.0f} ms; {n} processes "
        f"x {args.concurrency} attempts at once; {args.rounds} round(s)"
    )
    ratios: list[float] = []
    over = tokens_over = False
    with tempfile.TemporaryDirectory(prefix="bench-many-hosts-") as tmp:
        redis_proc, url = start_redis(Path(tmp))
        try:
            for number in range(1, args.rounds + 1):
                print(f"round {number} (load average {os.getloadavg()[0]:.1f})")
                root = Path(tmp) / f"round{number}"
                ratio, broke_slots, broke_tokens = one_round(args, root, url, redis_proc.pid)
                ratios.append(ratio)
                over = over or broke_slots
                tokens_over = tokens_over or broke_tokens
        finally:
            redis_proc.kill()
            redis_proc.wait()
    ratio = statistics.median(ratios)
    print(
        f"many hosts: {ratio:.2f}x the one-process SQLite baseline (median of "
        f"{len(ratios)} round(s): {', '.join(f'{r:.2f}' for r in ratios)}; target >= {TARGET}x); "
        f"moments above {LIMIT_SESSIONS} concurrent: {'some' if over else 0}; "
        f"token windows over the limit: {'some' if tokens_over else 0}; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    ok = ratio >= TARGET and not over and not tokens_over
    return 0 if ok else 1


def one_round(
    args: argparse.Namespace, root: Path, url: str, redis_pid: int
) -> tuple[float, bool, bool]:
    """The baseline, then the many-hosts side on a fresh database and an emptied Redis:
    (ratio, any moment above the limit, any token window over it)."""
    import redis

    n = args.processes
    base_job = {
        "attempts": args.attempts,
        "concurrency": args.concurrency * n,
        "hold": args.hold,
        "home": str(root / "baseline"),
        "profile": f"{args.profile}.baseline" if args.profile else "",
    }
    wall, results, _ = run_processes([base_job], None)
    baseline = summary("baseline", wall, results)
    with redis.Redis.from_url(url) as client:
        client.flushall()  # the last round's token window and lines
    state = create_database(args.postgres)
    try:
        jobs = [
            {
                "attempts": args.attempts // n + (1 if i < args.attempts % n else 0),
                "concurrency": args.concurrency,
                "hold": args.hold,
                "redis": url,
                "state": state,
                "store": str(root / "provider"),  # one local provider: Foundry's stand-in
                "home": str(root / f"p{i}"),
                "profile": f"{args.profile}.p{i}" if args.profile else "",
            }
            for i in range(n)
        ]
        meter = Meter(args.postgres, state, url, redis_pid)
        wall, results, sampled = run_processes(jobs, url, meter)
        many = summary(f"{n} x PG+Redis", wall, results)
        where_time_goes(meter, many)
    finally:
        drop_database(args.postgres, state)
    ratio = many["rate"] / baseline["rate"]
    print(f"  ratio {ratio:.2f}x; Redis-side: most leases seen {sampled} (limit {LIMIT_SESSIONS})")
    over = many["top"] > LIMIT_SESSIONS or sampled > LIMIT_SESSIONS
    return ratio, over, many["widest_60s"] > LIMIT_TOKENS


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
