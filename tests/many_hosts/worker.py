"""One runtime process for the many-hosts tests: `python worker.py '<job json>'`.

The job names the Redis URL, the pool's limits and what to do; the worker prints JSON lines.
Each worker has its own registry and local store (state per process); only Redis is shared.

  hold    create `n` sessions (no wait), print what happened, then wait for a line on stdin
          (or `seconds`) and end them
  churn   for `seconds`: create a session (waiting up to `wait`), count it in a Redis-side
          counter (INCR after admission, DECR before the end: never below the real holders),
          hold it a random time, end it; print the highest count seen
  turns   one session; send turns until the pool's token budget refuses one; print the tokens
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from runtime_support import AUTH, contract_project

from runner import Lifecycle
from runner.runtime.errors import PoolLimitError, TokenBudgetError

ENV = """
apiVersion: runner/v1
kind: Environment
name: local
provider: local
default: true
data_dir: {data_dir}
redis: {redis}
"""

POOL = """
apiVersion: runner/v1
kind: ResourcePool
name: shared
agents: [tech-advisor]
limits:
  max_concurrent_sessions: {sessions}
  max_tokens_per_minute: {tokens}
"""


def emit(**data: Any) -> None:
    print(json.dumps(data), flush=True)


async def main(job: dict[str, Any]) -> None:
    home = Path(job["home"])
    home.mkdir(parents=True, exist_ok=True)
    project = contract_project(
        ENV.format(data_dir=home / "store", redis=job["redis"]),
        POOL.format(sessions=job.get("sessions", 2), tokens=job.get("tokens", 100000)),
    )
    environ = {"RUNNER_POOL_LEASE_TTL_MS": str(job.get("ttl_ms", 30000))}
    async with Lifecycle.open(
        project, env="local", registry_path=home / "state.db", environ=environ
    ) as lc:
        await globals()[job["do"]](lc, job)


async def hold(lc: Any, job: dict[str, Any]) -> None:
    sessions, refused = [], 0
    for _ in range(job["n"]):
        try:
            sessions.append(await lc.create_agent_session(agent="tech-advisor", auth=AUTH))
        except PoolLimitError:
            refused += 1
    emit(created=len(sessions), refused=refused)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for session in sessions:
        await session.end("done")
    emit(ended=len(sessions))


async def churn(lc: Any, job: dict[str, Any]) -> None:
    import redis.asyncio as aioredis

    counter = aioredis.Redis.from_url(job["redis"])
    key = job["counter"]
    top, created, refused = 0, 0, 0
    deadline = time.monotonic() + job["seconds"]

    async def one_worker() -> None:
        nonlocal top, created, refused
        while time.monotonic() < deadline:
            try:
                session = await lc.create_agent_session(
                    agent="tech-advisor", auth=AUTH, wait=job.get("wait", 5)
                )
            except PoolLimitError:
                refused += 1
                continue
            created += 1
            top = max(top, int(await counter.incr(key)))
            await asyncio.sleep(random.uniform(0, job.get("hold", 0.02)))
            await counter.decr(key)
            await session.end("done")

    await asyncio.gather(*(one_worker() for _ in range(job.get("concurrency", 4))))
    await (getattr(counter, "aclose", None) or counter.close)()
    emit(top=top, created=created, refused=refused)


async def turns(lc: Any, job: dict[str, Any]) -> None:
    session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
    sent = 0
    try:
        for _ in range(job.get("max_turns", 50)):
            await session.send("How do I reset the cache on my laptop?")
            sent += 1
        emit(sent=sent, refused=None)
    except TokenBudgetError as exc:
        emit(sent=sent, refused=str(exc), used=exc.used, limit=exc.limit)
    await session.end("done")


if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    asyncio.run(main(json.loads(sys.argv[1])))
