"""Sessions owned by leases, across real processes, on SQLite (one host) and PostgreSQL.

Chaos: instance A (another process, another reported hostname) runs two turns, then changes the
session's state (pause, resume, a person, resume: written at once), then is killed with SIGKILL
in the middle of its third turn. (Turn counters are written behind, at most
`AGENT_LIFECYCLE_PERSIST_INTERVAL_MS` late: A runs that long after its turns.) Instance B (this
process) cannot act on the session while A's lease lasts (its sweeper does not end it, a message
waits); once the lease ran out, B serves the next turn with every earlier turn, token and
message kept. A short lease (`AGENT_LIFECYCLE_SESSION_LEASE_MS`) keeps the test quick.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pg_support import fresh_schema_url

from runner.providers.local_store import LocalStore
from runner.runtime.clock import FakeClock
from runner.runtime.lifecycle import Lifecycle

AUTH = {"user_id": "u1", "workspace_id": "w1", "permissions": ["chat:access"]}
LEASE_MS = "1500"

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

INSTANCE_A = r"""
import asyncio, sys, time
from pathlib import Path
from runner.providers.local import LocalProvider
from runner.providers.local_store import LocalStore
from runner.runtime.lifecycle import Lifecycle

specs, registry, store_path, out = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
AUTH = {"user_id": "u1", "workspace_id": "w1", "permissions": ["chat:access"]}

class HangsOnRequest(LocalProvider):
    def respond(self, **kw):
        if kw["text"] == "hang":
            (out / "hanging").write_text("1")
            time.sleep(600)
        return super().respond(**kw)

async def main():
    import os
    provider = HangsOnRequest(LocalStore(store_path), owns_store=True)
    async with Lifecycle.open(specs, env="dev", registry_path=registry, environ=dict(os.environ),
                              provider=provider, background=True) as lc:
        session = await lc.create_agent_session(agent="helper", auth=AUTH, idle_timeout=3600)
        await session.send("one")
        await session.send("two")
        await asyncio.sleep(1.5)  # turn counters are written behind (persist interval, 1 s)
        await lc.pause_session(session.id, auth=AUTH)  # state changes are written at once
        await lc.resume_session(session.id, auth=AUTH)
        await lc.await_human(session.id, auth=AUTH, reason="check")
        await lc.resume_session(session.id, auth=AUTH)
        (out / "session").write_text(session.id)
        await session.send("hang")

asyncio.run(main())
"""


@pytest.fixture(params=["sqlite", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    environ = {"AGENT_LIFECYCLE_SESSION_LEASE_MS": LEASE_MS, "RUNNER_HOSTNAME": "host-a"}
    line = ""
    if request.param == "postgres":
        environ["CHAOS_STATE_URL"] = fresh_schema_url()
        line = "state: ${CHAOS_STATE_URL}"  # resolved only when the state is opened
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "all.yaml").write_text(SPECS.format(data_dir=tmp_path / "store", state=line))
    return environ


def _lease_until(state: dict[str, str], registry: Path, session_id: str) -> float:
    """When the session's lease runs out, as stored (0: nobody holds it)."""
    sql = "SELECT lease_until FROM rt_sessions WHERE id = "
    if "CHAOS_STATE_URL" in state:
        import psycopg

        with psycopg.connect(state["CHAOS_STATE_URL"]) as conn:
            row = conn.execute(sql + "%s", (session_id,)).fetchone()
    else:
        import sqlite3

        with sqlite3.connect(registry) as conn:
            row = conn.execute(sql + "?", (session_id,)).fetchone()
    assert row is not None
    return float(row[0])


def _wait_for(path: Path, process: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        if process.poll() is not None:
            _out, err = process.communicate()
            raise AssertionError(f"instance A exited {process.returncode}: {err.decode()}")
        assert time.monotonic() < deadline, f"instance A never wrote {path.name}"
        time.sleep(0.02)


async def test_kill_9_mid_turn_then_another_instance_continues_the_session(
    tmp_path: Path, state: dict[str, str]
) -> None:
    registry = tmp_path / "state.db"
    store_path = tmp_path / "store" / "local-store.db"
    env = {**os.environ, **state}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            INSTANCE_A,
            str(tmp_path / "specs"),
            str(registry),
            str(store_path),
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(tmp_path / "hanging", process)
        session_id = (tmp_path / "session").read_text()
        clock = FakeClock(start=time.time())
        environ: dict[str, Any] = {**state, "RUNNER_HOSTNAME": "host-b"}
        async with Lifecycle.open(
            str(tmp_path / "specs"),
            env="dev",
            registry_path=registry,
            environ=environ,
            clock=clock,
            background=False,
        ) as lc:
            # A holds the session mid-turn: B's sweeper, however idle it looks, leaves it alone.
            clock.advance(7200)
            assert session_id not in await lc.sweep()
            row = lc.store.load(session_id)
            assert row is not None and row.state == "active"
            clock.set(time.time())

            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            held_until = _lease_until(state, registry, session_id)
            assert held_until > time.time() - 5  # A held it when it died
            reply = await lc.send(session_id, "three", auth=AUTH, wait=None)
            assert reply.turn == 3 and reply.text  # turns one and two were A's
            assert time.time() >= held_until  # it waited for A's lease to run out
            lc.flush()
            row = lc.store.load(session_id)
            assert row is not None
            assert (row.state, row.turns) == ("active", 3)
            assert row.input_tokens > 0 and row.output_tokens > 0
            follow = await lc.send(session_id, "four", auth=AUTH, wait=None)
            assert follow.turn == 4
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    store = LocalStore(store_path)
    try:
        page = store.list_items(row.conversation_id, limit=100)
        texts = [item.content for item in page.items if item.role == "user"]
    finally:
        store.close()
    for message in ("one", "two", "three", "four"):
        assert message in texts


async def test_two_live_instances_take_turns_on_one_session_without_interleaving(
    tmp_path: Path, state: dict[str, str]
) -> None:
    """Any instance serves any session: alternating instances, every turn counted once."""
    registry = tmp_path / "state.db"
    opened = [
        Lifecycle.open(
            str(tmp_path / "specs"),
            env="dev",
            registry_path=registry,
            environ={**state, "RUNNER_HOSTNAME": host, "AGENT_LIFECYCLE_PERSIST_INTERVAL_MS": "50"},
            background=True,  # gives back leases kept between turns (write-behind pass)
        )
        for host in ("host-a", "host-b")
    ]
    a = await opened[0]
    b = await opened[1]
    try:
        session = await a.create_agent_session(agent="helper", auth=AUTH)
        replies = await asyncio.gather(
            *((a if i % 2 else b).send(session.id, f"m{i}", auth=AUTH, wait=None) for i in range(8))
        )
        assert sorted(r.turn for r in replies) == list(range(1, 9))
        await b.end_agent_session(session.id, auth=AUTH)
        # a still had the session in memory: its sweep drops it, its copy never rewrites it
        await a.sweep()
        assert session.id not in {r.id for r in a.store.load_open("dev")}
        assert a.active_sessions == 0
        row = b.store.load(session.id)
        assert row is not None and row.state == "ended" and row.turns == 8
    finally:
        await a.close()
        await b.close()


async def test_a_session_left_by_another_instance_is_swept_once_idle(
    tmp_path: Path, state: dict[str, str]
) -> None:
    """B never held the session (A opened it after B started); A goes away; B's sweeper ends
    it once idle, under its lease, and not before."""
    registry = tmp_path / "state.db"
    clock = FakeClock(start=time.time())

    def open_one(host: str) -> Any:
        return Lifecycle.open(
            str(tmp_path / "specs"),
            env="dev",
            registry_path=registry,
            environ={**state, "RUNNER_HOSTNAME": host},
            clock=clock,
            background=False,
        )

    async with open_one("host-b") as b:
        async with open_one("host-a") as a:
            session = await a.create_agent_session(agent="helper", auth=AUTH, idle_timeout=60)
            await session.send("hello")
        assert session.id not in await b.sweep()  # not idle yet
        clock.advance(61)
        assert await b.sweep() == [session.id]
        row = b.store.load(session.id)
        assert row is not None and (row.state, row.reason, row.turns) == (
            "ended",
            "idle_timeout",
            1,
        )


async def test_another_instance_never_sweeps_a_session_in_use(
    tmp_path: Path, state: dict[str, str]
) -> None:
    """The reported bug: B's idle sweeper ended a session A used every 100 ms. B acts only on
    the stored row, under the lease: the session stays active while A uses it, and B ends it
    once it really is idle."""
    registry = tmp_path / "state.db"
    environ = {**state, "AGENT_LIFECYCLE_PERSIST_INTERVAL_MS": "50"}
    a = await Lifecycle.open(
        str(tmp_path / "specs"), env="dev", registry_path=registry, environ=environ
    )
    session = await a.create_agent_session(agent="helper", auth=AUTH, idle_timeout=2.0)
    a.flush()
    b = await Lifecycle.open(  # holds the open session from the store, as it was then
        str(tmp_path / "specs"),
        env="dev",
        registry_path=registry,
        environ={**environ, "RUNNER_HOSTNAME": "host-b"},
        background=False,
    )
    try:
        assert b.session_row(session.id) is not None
        swept: list[str] = []
        for i in range(25):  # 2.5 s of use, a message every 100 ms: past the idle timeout
            await session.send(f"m{i}")
            swept.extend(await b.sweep())
            await asyncio.sleep(0.1)
        assert swept == []
        row = b.store.load(session.id)
        assert row is not None and row.state == "active" and row.turns >= 20
        await asyncio.sleep(2.3)
        assert await b.sweep() == [session.id]
        with pytest.raises(Exception, match="ended"):
            await session.send("too late")
    finally:
        await a.close()
        await b.close()


async def test_an_end_gives_the_lease_back_in_its_own_write(
    tmp_path: Path, state: dict[str, str]
) -> None:
    """Ending a session held here writes its final row and gives its lease back at once: no
    write-behind pass (`background=False`, no flush) is needed before the row is free."""
    registry = tmp_path / "state.db"
    async with Lifecycle.open(
        str(tmp_path / "specs"),
        env="dev",
        registry_path=registry,
        environ=state,
        background=False,
    ) as lc:
        session = await lc.create_agent_session(agent="helper", auth=AUTH)
        await session.send("hello")
        assert _lease_until(state, registry, session.id) > time.time()  # held since created
        await session.end("done")
        assert _lease_until(state, registry, session.id) == 0
        row = lc.store.load(session.id)
        assert row is not None and (row.state, row.reason, row.turns) == ("ended", "done", 1)
