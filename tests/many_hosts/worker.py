"""One runtime process for the many-hosts tests: `python worker.py '<job json>'`.

The job says what to do; the worker prints JSON lines. With `redis` in the job the pool's limits
and events go through that Redis and each worker keeps its own registry (`home`/state.db);
without it every worker of a test opens the same registry file (`registry`) and the limits are
the registry's, shared by the processes of the host (the default). Each worker has its own local
provider store. `env` adds runtime variables.

  hold    create `n` sessions on the pool (no waiting), print created/refused, wait for a line
          on stdin and end them
  churn   for `seconds`, `concurrency` tasks: create a session (waiting up to `wait`), hold it
          a random time, end it; print the (admitted, ending) wall-clock intervals, taken
          inside the admission and before the end, so they never overlap more than the
          sessions really held; with `counter` (a Redis key) also count holders there (INCR
          after admission, DECR before the end) and print the highest count seen
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
    env = ENV.format(data_dir=home / "store")
    if job.get("redis"):
        env += f"redis: {job['redis']}\n"
    project = contract_project(
        env, POOL.format(sessions=job.get("sessions", 2), tokens=job.get("tokens", 100000))
    )
    environ = {"RUNNER_POOL_LEASE_TTL_MS": str(job.get("ttl_ms", 30000)), **job.get("env", {})}
    registry = job.get("registry") or home / "state.db"
    async with Lifecycle.open(project, env="local", registry_path=registry, environ=environ) as lc:
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
    counter = None
    if job.get("counter"):
        import redis.asyncio as aioredis

        counter = aioredis.Redis.from_url(job["redis"])
    intervals: list[tuple[float, float]] = []
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
            admitted = time.time()
            created += 1
            if counter is not None:
                top = max(top, int(await counter.incr(job["counter"])))
            await asyncio.sleep(random.uniform(0, job.get("hold", 0.02)))
            if counter is not None:
                await counter.decr(job["counter"])
            intervals.append((admitted, time.time()))
            await session.end("done")

    await asyncio.gather(*(one_worker() for _ in range(job.get("concurrency", 4))))
    if counter is not None:
        await (getattr(counter, "aclose", None) or counter.close)()
    emit(top=top, created=created, refused=refused, intervals=intervals)


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
