"""Pool limits shared by the runtime processes of one host through the SQLite registry, the
default when the Environment declares no `redis:` (issue 12, item 5): real processes on one
real registry file never hold more than the limit and share one token window; a dead process's
places come back after its lease; a process never expires its own leases, whatever its clock
says (a fake one here); figures count every process; `RUNNER_POOL_LIMITS=process` opts out;
PostgreSQL state without Redis says its limits are per process."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtime_support import AUTH, contract_project
from worker import ENV, POOL

from runner import Lifecycle
from runner.runtime.clock import FakeClock
from runner.runtime.errors import PoolLimitError, TokenBudgetError
from runner.runtime.pools.sqlite_limits import SqliteLimits

WORKER = Path(__file__).with_name("worker.py")


def holders(registry: Path) -> int:
    conn = sqlite3.connect(registry)
    try:
        query = "SELECT count(*) FROM pool_holders WHERE pool = 'local/shared'"
        return int(conn.execute(query).fetchone()[0])
    finally:
        conn.close()


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    top = now = 0
    for _, step in edges:
        now += step
        top = max(top, now)
    return top


def test_two_processes_on_one_registry_never_hold_more_than_the_limit(
    tmp_path: Path, spawn: Any
) -> None:
    registry = tmp_path / "state.db"
    job = {"script": WORKER, "registry": str(registry), "do": "hold", "n": 2, "sessions": 2}
    a = spawn("a", **job)
    assert a.line() == {"created": 2, "refused": 0}
    b = spawn("b", **job)
    assert b.line() == {"created": 0, "refused": 2}  # alone, each process would have taken 2
    assert holders(registry) == 2
    assert a.result() == {"ended": 2}
    for _ in range(50):  # the releases are written a few milliseconds after the ends
        if holders(registry) == 0:
            break
        time.sleep(0.02)
    assert holders(registry) == 0
    c = spawn("c", **{**job, "n": 3})
    assert c.line() == {"created": 2, "refused": 1}
    assert c.result() == {"ended": 2} and b.result() == {"ended": 0}


def test_churn_of_two_processes_stays_within_the_limit(tmp_path: Path, spawn: Any) -> None:
    registry = tmp_path / "state.db"
    job = {
        "script": WORKER,
        "registry": str(registry),
        "do": "churn",
        "sessions": 2,
        "seconds": 3,
        "concurrency": 4,
        "hold": 0.02,
        "wait": 3,
    }
    first, second = spawn("a", **job), spawn("b", **job)
    one, two = first.result(), second.result()
    assert len(one["intervals"]) > 5 and len(two["intervals"]) > 5  # both got slots
    assert most_at_once(one["intervals"] + two["intervals"]) <= 2


def test_a_dead_processs_places_come_back_after_its_lease(tmp_path: Path, spawn: Any) -> None:
    registry = tmp_path / "state.db"
    job = {"script": WORKER, "registry": str(registry), "do": "hold", "n": 2, "ttl_ms": 1500}
    a = spawn("a", **job)
    assert a.line()["created"] == 2
    a.proc.kill()  # kill -9: nothing released
    a.proc.wait(10)
    b = spawn("b", **job)
    assert b.line() == {"created": 0, "refused": 2}  # the leases are still running
    b.proc.kill()
    time.sleep(1.6)
    c = spawn("c", **job)
    assert c.line() == {"created": 2, "refused": 0}
    c.proc.kill()


def test_tokens_per_minute_is_one_window_for_the_processes_of_a_host(
    tmp_path: Path, spawn: Any
) -> None:
    job = {"script": WORKER, "registry": str(tmp_path / "state.db"), "do": "turns"}
    job["tokens"] = 2000
    first = spawn("a", **job).result()
    assert first["refused"] is not None and first["sent"] >= 1
    second = spawn("b", **job).result()
    # the second process starts on the first one's window: what is left of it only
    assert second["refused"] is not None and "max_tokens_per_minute 2,000" in second["refused"]
    assert second["used"] >= first["used"] and second["sent"] < first["sent"]
    alone = spawn("c", **{**job, "registry": str(tmp_path / "other.db")}).result()
    assert alone["sent"] == first["sent"]  # a registry of its own: a window of its own


def test_process_escape_hatch_keeps_the_limits_out_of_the_registry(
    tmp_path: Path, spawn: Any
) -> None:
    registry = tmp_path / "state.db"
    job = {"script": WORKER, "registry": str(registry), "do": "hold", "n": 3}
    a = spawn("a", **job, env={"RUNNER_POOL_LIMITS": "process"})
    assert a.line() == {"created": 2, "refused": 1}  # its own counts still hold it to 2
    assert holders(registry) == 0  # and nothing of them is in the registry
    assert a.result() == {"ended": 2}


async def test_leases_expire_on_the_runtimes_clock_but_never_for_their_own_process(
    tmp_path: Path,
) -> None:
    """Two limits objects on one file stand for two processes; time is a fake clock."""
    registry = tmp_path / "state.db"
    clock = FakeClock()
    alive = SqliteLimits(registry, clock=clock, namespace="local", lease_ttl=30)
    dead = SqliteLimits(registry, clock=clock, namespace="local", lease_ttl=30)
    try:
        assert await dead.take("s1", [("p", 2)], rank=2, queue=False) is None
        assert await alive.take("s2", [("p", 2)], rank=2, queue=False) is None
        assert await alive.take("s3", [("p", 2)], rank=2, queue=False) == "p"
        clock.advance(29)
        assert await alive.take("s3", [("p", 2)], rank=2, queue=False) == "p"
        clock.advance(2)  # 31 s: `dead` never renewed; `alive` did not either, but it lives
        assert await alive.take("s3", [("p", 2)], rank=2, queue=False) is None
        assert await alive.take("s4", [("p", 2)], rank=2, queue=False) == "p"
        assert await alive.held("p") == 2
    finally:
        await alive.close()
        await dead.close()


async def test_token_window_slides_on_the_runtimes_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    limits = SqliteLimits(tmp_path / "state.db", clock=clock, namespace="local")
    other = SqliteLimits(tmp_path / "state.db", clock=clock, namespace="local")
    try:
        blocked, first = await limits.reserve([("p", 100)], 60, estimate=10)
        assert blocked is None
        limits.settle_soon(first, ["p"], 60)
        blocked, _ = await other.reserve([("p", 100)], 50, estimate=50)
        assert blocked is not None and blocked[:3] == ("p", 100, 60)
        assert 59 <= blocked[3] <= 60
        clock.advance(blocked[3] + 0.01)
        blocked, _ = await other.reserve([("p", 100)], 50, estimate=50)
        assert blocked is None
    finally:
        await limits.close()
        await other.close()


async def test_an_allowance_never_lets_the_processes_exceed_the_limit(tmp_path: Path) -> None:
    """A large limit: a process admits turns from an allowance (a 16th of the limit) without a
    write; another process sees the allowance counted in full at once."""
    clock = FakeClock()
    a = SqliteLimits(tmp_path / "state.db", clock=clock, namespace="local")
    b = SqliteLimits(tmp_path / "state.db", clock=clock, namespace="local")
    try:
        admitted = {"a": 0, "b": 0}
        for _ in range(400):
            for name, limits in (("a", a), ("b", b)):
                blocked, ticket = await limits.reserve([("p", 16000)], 100, estimate=100)
                if blocked is None:
                    limits.settle_soon(ticket, ["p"], 100)
                    admitted[name] += 100
        window = sum(n for _, n in await a.window("p"))
        assert admitted["a"] + admitted["b"] <= 16000 <= window + 100
        assert admitted["a"] > 0 and admitted["b"] > 0
    finally:
        await a.close()
        await b.close()


def _project(tmp_path: Path, name: str, sessions: int = 2) -> Any:
    return contract_project(
        ENV.format(data_dir=tmp_path / name), POOL.format(sessions=sessions, tokens=100000)
    )


async def test_figures_count_every_process_of_the_host(tmp_path: Path) -> None:
    registry = tmp_path / "state.db"
    async with (
        Lifecycle.open(_project(tmp_path, "a", 3), env="local", registry_path=registry) as a,
        Lifecycle.open(_project(tmp_path, "b", 3), env="local", registry_path=registry) as b,
    ):
        await a.create_agent_session(agent="tech-advisor", auth=AUTH)
        await b.create_agent_session(agent="tech-advisor", auth=AUTH)
        await b.create_agent_session(agent="tech-advisor", auth=AUTH)
        with pytest.raises(PoolLimitError):
            await a.create_agent_session(agent="tech-advisor", auth=AUTH)
        assert a.pools.shared is not None
        await a.pools.shared.occupancy.read(["shared"])
        figures = a.get_system_analytics()["resources"]["pools"]["shared"]
        assert figures["counted_by"] == "host" and str(registry) in figures["counted_in"]
        assert figures["active_sessions"] == 3 and figures["process_active_sessions"] == 1
        assert figures["session_utilization"] == 1.0


async def test_turns_refused_by_the_shared_window_name_the_pool(tmp_path: Path) -> None:
    registry = tmp_path / "state.db"
    project = contract_project(
        ENV.format(data_dir=tmp_path / "s"), POOL.format(sessions=5, tokens=300)
    )
    async with (
        Lifecycle.open(project, env="local", registry_path=registry) as a,
        Lifecycle.open(project, env="local", registry_path=registry) as b,
    ):
        one = await a.create_agent_session(agent="tech-advisor", auth=AUTH)
        two = await b.create_agent_session(agent="tech-advisor", auth=AUTH)
        with pytest.raises(TokenBudgetError) as refused:
            for _ in range(20):
                await one.send("How do I reset the cache on my laptop?")
                await two.send("How do I reset the cache on my laptop?")
        assert refused.value.pool == "shared" and refused.value.limit == 300
        await asyncio.sleep(0)


async def test_places_taken_ahead_never_let_the_processes_exceed_the_limit(
    tmp_path: Path,
) -> None:
    """A roomy pool (limit >= 64): a process takes places ahead so its next sessions start
    without a write; every process counts them at once, so together they never pass the
    limit, and what one gives back the other can take."""
    clock = FakeClock()
    a = SqliteLimits(tmp_path / "state.db", clock=clock, namespace="local")
    b = SqliteLimits(tmp_path / "state.db", clock=clock, namespace="local")
    try:
        held: dict[str, list[str]] = {"a": [], "b": []}
        for i in range(150):
            for name, limits in (("a", a), ("b", b)):
                holder = f"{name}{i}"
                if await limits.take(holder, [("p", 100)], rank=2, queue=False) is None:
                    held[name].append(holder)
        assert len(held["a"]) + len(held["b"]) == 100  # all of it, never more
        assert held["a"] and held["b"]
        assert await a.take("late", [("p", 100)], rank=2, queue=False) == "p"
        assert await b.held("p") == 100
        for holder in held["a"]:
            a.release_soon(holder, ["p"])
        await asyncio.sleep(0.05)  # a writes its releases a few milliseconds later
        # what a kept ahead (at most 32) still admits a's sessions for a second; the rest is
        # free for b at once
        assert await b.take("meanwhile", [("p", 100)], rank=2, queue=False) is None
        clock.advance(2)  # a's places taken ahead no longer admit: they go back
        await asyncio.sleep(1.2)  # (given back by a timer, or a's next take)
        taken = 1
        for i in range(150):
            if await b.take(f"again{i}", [("p", 100)], rank=2, queue=False) is None:
                taken += 1
        assert taken == len(held["a"])
    finally:
        await a.close()
        await b.close()
