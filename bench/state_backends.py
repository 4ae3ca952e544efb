"""Benchmark: the PostgreSQL state backend against the embedded SQLite file, in one process.

Figures, each a ratio of PostgreSQL to SQLite measured back to back in this process:
  - full session lifecycles per second through the public runtime API (create an agent
    session, three turns, end it; the local provider answers), with the sessions, their
    leases and the applied state on the backend;
  - apply lock round trips per second (take and give back an environment's lock: SQLite's lock
    row, PostgreSQL's advisory lock on a connection of its own).

    python bench/state_backends.py [--sessions 600] [--locks 300]

PostgreSQL: RUNNER_TEST_POSTGRES_URL (default the local server, user postgres); the bench makes
a database of its own and drops it. Target: lifecycles on PostgreSQL >= 0.5x of SQLite (each
write is a round trip to a server instead of a local file).

Printed beside it, the server's floor: the ratio a lifecycle would have if PostgreSQL cost only
its durable commits (those a lifecycle makes, counted in `pg_stat_database`, times one INSERT
and COMMIT round trip on a logged table, measured here). SQLite in WAL mode with
`synchronous=NORMAL` does not sync the file at each commit; PostgreSQL with its default
`synchronous_commit=on` waits for the WAL to reach the disk at each one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from runner import Lifecycle
from runner.state.backends import StateLocation, open_registry

TARGET = 0.5
AUTH = {"user_id": "bench", "workspace_id": "w1", "permissions": ["chat:access"]}
SPECS = """\
apiVersion: runner/v1
kind: Environment
name: dev
provider: local
default: true
data_dir: {data_dir}
{state}
---
apiVersion: runner/v1
kind: Agent
name: helper
model: gpt-4o
instructions: You help.
"""


async def lifecycles(specs: Path, registry: Path, environ: dict[str, str], n: int) -> float:
    async with Lifecycle.open(str(specs), env="dev", registry_path=registry, environ=environ) as lc:
        session = await lc.create_agent_session(agent="helper", auth=AUTH)  # warm up
        await session.send("hello")
        await session.end()
        started = time.perf_counter()
        for _ in range(n):
            session = await lc.create_agent_session(agent="helper", auth=AUTH)
            for text in ("one", "two", "three"):
                await session.send(text)
            await session.end()
        return n / (time.perf_counter() - started)


def commits(url: str, database: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def commit_round_trip(url: str, n: int = 500) -> float:
    """Seconds of one INSERT + COMMIT on a logged table (a round trip and a WAL flush)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_commit (n integer)")
        try:
            started = time.perf_counter()
            for i in range(n):
                conn.execute("INSERT INTO bench_commit VALUES (%s)", (i,))
            return (time.perf_counter() - started) / n
        finally:
            conn.execute("DROP TABLE bench_commit")


def locks(location: StateLocation, n: int) -> float:
    registry = open_registry(location)
    try:
        started = time.perf_counter()
        for _ in range(n):
            with registry.lock("dev", holder="bench", timeout=5):
                pass
        return n / (time.perf_counter() - started)
    finally:
        registry.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=600)
    parser.add_argument("--locks", type=int, default=300)
    args = parser.parse_args()
    import psycopg

    base = os.environ.get(
        "RUNNER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"runner_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            figures: dict[str, dict[str, float]] = {"lifecycles": {}, "locks": {}}
            per_lifecycle = 0.0  # PostgreSQL commits
            for backend in ("sqlite", "postgres", "sqlite", "postgres"):
                folder = root / backend  # one registry and one local store per backend
                specs = folder / "specs"
                specs.mkdir(parents=True, exist_ok=True)
                state = "state: ${BENCH_STATE}" if backend == "postgres" else ""
                (specs / "all.yaml").write_text(
                    SPECS.format(data_dir=folder / "store", state=state)
                )
                environ = {"BENCH_STATE": url}
                before = commits(base, name)
                rate = asyncio.run(lifecycles(specs, folder / "state.db", environ, args.sessions))
                if backend == "postgres":  # the statistics are sent within half a second
                    time.sleep(0.6)
                    per_lifecycle = (commits(base, name) - before) / (args.sessions + 1)
                best = figures["lifecycles"].get(backend, 0.0)
                figures["lifecycles"][backend] = max(best, rate)
                location = (
                    StateLocation(url=url)
                    if backend == "postgres"
                    else StateLocation(path=folder / "state.db")
                )
                rate = locks(location, args.locks)
                figures["locks"][backend] = max(figures["locks"].get(backend, 0.0), rate)
            commit = commit_round_trip(url)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    life = figures["lifecycles"]
    ratio = life["postgres"] / life["sqlite"]
    verdict = "OK" if ratio >= TARGET else "BELOW TARGET"
    sqlite_s = 1.0 / life["sqlite"]
    floor = sqlite_s / (sqlite_s + per_lifecycle * commit)
    print(
        f"lifecycles: PostgreSQL {life['postgres']:,.0f}/s vs SQLite {life['sqlite']:,.0f}/s "
        f"= {ratio:.2f}x (best of 2 each, {args.sessions} lifecycles; target >= {TARGET}x: "
        f"{verdict}); the server's floor: {floor:.2f}x ({per_lifecycle:.1f} commits per "
        f"lifecycle x {commit * 1e6:,.0f} us per INSERT + COMMIT round trip, measured here, "
        f"with nothing else of PostgreSQL's)"
    )
    lock = figures["locks"]
    print(
        f"apply lock round trips: PostgreSQL {lock['postgres']:,.0f}/s vs SQLite "
        f"{lock['sqlite']:,.0f}/s = {lock['postgres'] / lock['sqlite']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
