"""Benchmark: many runtime processes sharing one pool through Redis (issue 12).

One run, two measurements of the same workload (2,000 session attempts on one pool, limited to
20 concurrent sessions and 20,000 tokens per minute):

  baseline    one runtime process on SQLite, limits in the process (the default)
  many hosts  4 runtime processes, each with its own SQLite state, sharing the pool's limits and
              events through a private redis-server (started here on a free loopback port)

An attempt: create a session on `general-agent-1` (waiting up to 60 s for a slot), hold it a
random 0-20 ms, send one turn (refused when the token budget is spent: counted, not waited
for), end it. Every process runs `--concurrency` attempts at once (the baseline: all of them),
so the processes ask for more slots than the pool has.

Checked, from both sides:
  - concurrency: every process logs when each session was admitted and when it started to end
    it (log side: intervals inside the real holding, on one host's clock); the largest overlap
    of all processes' intervals, and a sampler reading the pool's lease set in Redis every few
    ms (Redis side): 0 moments above 20;
  - tokens: every turn's tokens (as the provider reported them) with their time; the largest
    sum over any 60 s window must be within 20,000.
Printed: full session lifecycles per second, many hosts as a ratio of the baseline. Target
>= 0.5 on a 2-core machine. PostgreSQL state joins when that backend lands (issue 12, items
1 and 4); today each process keeps its state in its own SQLite file.

    python bench/many_hosts.py [--attempts 2000] [--processes 4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runtime import CONTRACT, load_contract

TARGET = 0.5
LIMIT_SESSIONS = 20
LIMIT_TOKENS = 20_000
HOLDERS = "runner:local:pool:high-performance:holders"
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
    env = ENV.format(data_dir=home / "store")
    if job.get("redis"):
        env += f"redis: {job['redis']}\n"
    project = load_contract(CONTRACT, env, POOL)
    result: dict[str, Any] = {
        "created": 0,
        "completed": 0,
        "refused_slots": 0,
        "refused_tokens": 0,
        "held": [],
        "tokens": [],
    }
    async with Lifecycle.open(project, env="local", registry_path=home / "state.db") as lc:
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
            try:
                reply = await session.send("Hi, I need help with my account")
                result["tokens"].append((time.time(), reply.input_tokens + reply.output_tokens))
            except TokenBudgetError:
                result["refused_tokens"] += 1
            result["held"].append((admitted, time.time()))
            await session.end("done")
            result["completed"] += 1

        async def loop() -> None:
            while queue:
                queue.pop()
                await attempt()

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(job["concurrency"])))
        result["seconds"] = time.perf_counter() - started
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------- the run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench: redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                sys.exit("bench: redis-server did not start")
            time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def run_processes(
    jobs: list[dict[str, Any]], redis_url: str | None
) -> tuple[float, list[Any], int]:
    """Start the processes, wait until each is ready, start them together; (wall seconds,
    results, the most leases the Redis-side sampler saw)."""
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
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        if proc.returncode != 0:
            sys.exit(f"bench: a worker failed ({proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - started
    top = sampler.stop() if sampler is not None else 0
    return wall, results, top


class Sampler:
    """Reads the pool's lease set in Redis every few ms, in a thread: the most seen."""

    def __init__(self, url: str) -> None:
        import threading

        import redis

        self.client = redis.Redis.from_url(url)
        self.top = 0
        self.samples = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while self.running:
            self.top = max(self.top, int(self.client.zcard(HOLDERS)))
            self.samples += 1
            time.sleep(0.003)

    def stop(self) -> int:
        self.running = False
        self.thread.join(5)
        self.client.close()
        return self.top


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
    }
    print(
        f"  {name:<11} {completed:,} lifecycles in {wall:.1f}s = {figures['rate']:.0f}/s; "
        f"most held at once {figures['top']} (limit {LIMIT_SESSIONS}); "
        f"turns {figures['turns']:,} (refused by the token budget {figures['refused_tokens']:,});"
        f" widest 60 s window {figures['widest_60s']:,} tokens (limit {LIMIT_TOKENS:,})"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8, help="attempts at once, per process")
    parser.add_argument("--hold", type=float, default=0.02, help="longest hold (s)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        import faulthandler
        import signal

        faulthandler.register(signal.SIGUSR1, all_threads=True)
        asyncio.run(worker(json.loads(args.worker)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-many-hosts-") as tmp:
        root = Path(tmp)
        redis_proc, url = start_redis(root)
        try:
            n = args.processes
            print(
                f"bench many_hosts: {args.attempts:,} attempts, pool of {LIMIT_SESSIONS} sessions "
                f"and {LIMIT_TOKENS:,} tokens/min, holds 0-{args.hold * 1000:.0f} ms"
            )
            base_job = {
                "attempts": args.attempts,
                "concurrency": args.concurrency * n,
                "hold": args.hold,
                "home": str(root / "baseline"),
            }
            wall, results, _ = run_processes([base_job], None)
            baseline = summary("baseline", wall, results)
            jobs = [
                {
                    "attempts": args.attempts // n + (1 if i < args.attempts % n else 0),
                    "concurrency": args.concurrency,
                    "hold": args.hold,
                    "redis": url,
                    "home": str(root / f"p{i}"),
                }
                for i in range(n)
            ]
            wall, results, sampled = run_processes(jobs, url)
            many = summary(f"{n} x Redis", wall, results)
        finally:
            redis_proc.kill()
            redis_proc.wait()
    ratio = many["rate"] / baseline["rate"]
    over = many["top"] > LIMIT_SESSIONS or sampled > LIMIT_SESSIONS
    tokens_over = many["widest_60s"] > LIMIT_TOKENS
    print(f"  Redis-side: most leases seen {sampled} (limit {LIMIT_SESSIONS})")
    print(
        f"many hosts: {ratio:.2f}x the one-process SQLite baseline (target >= {TARGET}x); "
        f"moments above {LIMIT_SESSIONS} concurrent: {'some' if over else 0}; "
        f"token windows over the limit: {'some' if tokens_over else 0}"
    )
    ok = ratio >= TARGET and not over and not tokens_over
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
