"""Pool places when several processes know a session: every one extends them, none writes back
a place the process that ended the session released (on the SQLite registry and on Redis),
whether it admitted the session or *found* it open (then its places are taken again once, in
case they expired); a place found missing is taken again only while the session store says its
session is open (a restarted Redis). (A second process on one registry used to renew released
places back every heartbeat: the pool stayed full of ended sessions while it lived.)"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "state"))
from pg_support import fresh_schema_url
from runtime_support import AUTH, contract_project
from worker import ENV, POOL

from runner import Lifecycle
from runner.runtime.clock import FakeClock
from runner.runtime.pools.redis_limits import RedisLimits
from runner.runtime.pools.shared import SharedPools
from runner.runtime.pools.sqlite_limits import SqliteLimits

FAST_LEASES = {"RUNNER_POOL_LEASE_TTL_MS": "300"}  # a heartbeat every 100 ms


def redis_holders(url: str) -> list[str]:
    client = redis.Redis.from_url(url)
    try:
        return sorted(m.decode() for m in client.zrange("runner:local:pool:shared:holders", 0, -1))
    finally:
        client.close()


def holders(registry: Path, pool: str = "local/shared") -> list[str]:
    conn = sqlite3.connect(registry)
    try:
        query = "SELECT holder FROM pool_holders WHERE pool = ? ORDER BY holder"
        return [str(h) for (h,) in conn.execute(query, (pool,))]
    finally:
        conn.close()


async def test_places_released_by_the_sessions_ender_stay_released(tmp_path: Path) -> None:
    registry = tmp_path / "state.db"
    project = contract_project(
        ENV.format(data_dir=tmp_path / "store"), POOL.format(sessions=2, tokens=100000)
    )

    def opened() -> Any:
        return Lifecycle.open(project, env="local", registry_path=registry, environ=FAST_LEASES)

    async with opened() as a:
        ones = [await a.create_agent_session(agent="tech-advisor", auth=AUTH) for _ in range(2)]
        async with opened() as b:  # finds a's two sessions open
            await asyncio.sleep(0.35)  # b's heartbeat has extended them more than once
            assert holders(registry) == sorted(s.id for s in ones)
            for session in ones:
                await session.end("done")
            await asyncio.sleep(0.5)  # five heartbeats of b, before its sweep learns they ended
            assert holders(registry) == []
            await b.sweep()  # b drops them: its own counts free up too
            twos = [await b.create_agent_session(agent="tech-advisor", auth=AUTH)]
            twos.append(await b.create_agent_session(agent="tech-advisor", auth=AUTH))
            assert holders(registry) == sorted(s.id for s in twos)


@pytest.mark.parametrize("state", ["sqlite", "postgres+redis"])
async def test_places_of_sessions_admitted_here_and_ended_elsewhere_stay_released(
    tmp_path: Path, state: str, redis_server: Any
) -> None:
    """`runner serve --workers`: the worker that ends a session is often not the one that
    admitted it; the admitting one's heartbeat must not write the released places back."""
    registry = tmp_path / "state.db"
    env, environ = ENV.format(data_dir=tmp_path / "store"), dict(FAST_LEASES)
    held = partial(holders, registry)
    if state == "postgres+redis":
        redis.Redis.from_url(redis_server.url).flushdb()
        env += f"state: ${{TEST_STATE_URL}}\nredis: {redis_server.url}\n"
        environ["TEST_STATE_URL"] = fresh_schema_url()
        held = partial(redis_holders, redis_server.url)
    project = contract_project(env, POOL.format(sessions=2, tokens=100000))

    def opened() -> Any:
        return Lifecycle.open(project, env="local", registry_path=registry, environ=environ)

    async with opened() as a, opened() as b:
        ones = [await a.create_agent_session(agent="tech-advisor", auth=AUTH) for _ in range(2)]
        assert held() == sorted(s.id for s in ones)
        for session in ones:
            await b.end_agent_session(session.id, auth=AUTH)
        await asyncio.sleep(0.5)  # five heartbeats of a, before its sweep learns they ended
        assert held() == []
        await a.sweep()
        twos = [await a.create_agent_session(agent="tech-advisor", auth=AUTH) for _ in range(2)]
        assert held() == sorted(s.id for s in twos)


async def test_a_found_session_ended_before_its_places_were_taken_again_gives_them_back(
    tmp_path: Path,
) -> None:
    """Two limits objects on one file stand for two processes: `ender` releases the session's
    place between the moment `finder` found it open and the moment it takes it again."""
    registry = tmp_path / "state.db"
    clock = FakeClock()
    ender = SqliteLimits(registry, clock=clock, namespace="local")
    ended: list[str] = []
    finder = SharedPools(
        SqliteLimits(registry, clock=clock, namespace="local"),
        clock=clock,
        scope="host",
        ended_elsewhere=lambda ids: [sid for sid in ids if sid in ended],  # the session store
    )
    try:
        for sid in ("s1", "s2"):
            assert await ender.take(sid, [("shared", 2)], rank=2, queue=False) is None
        finder.hold("s1", ["shared"])  # found open; taken again on the next turn of the loop
        finder.hold("s2", ["shared"])
        ended.append("s1")  # the ender writes the session ended, then releases its place
        await ender.release("s1", ["shared"])
        await ender.close()  # written now
        assert holders(registry, "local/shared") == ["s2"]
        await finder.drain()  # the finder takes both again, then asks which of them ended
        await asyncio.sleep(0.05)  # its release is written a few milliseconds later
        assert holders(registry, "local/shared") == ["s2"]  # s2 is still open: kept
    finally:
        await finder.close()


async def test_extending_on_redis_never_takes_a_released_place_again(redis_server: Any) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    limits = RedisLimits(redis_server.url, namespace="found", lease_ttl=30)
    key = "runner:found:pool:shared:holders"
    try:
        for sid in ("s1", "s2"):
            assert await limits.take(sid, [("shared", 2)], rank=2, queue=False) is None
        before = client.zscore(key, "s2")
        await limits.release("s1", ["shared"])
        await asyncio.sleep(0.01)
        missing = await limits.extend({"s1": ["shared"], "s2": ["shared"]})
        assert missing == ["s1"]  # for the caller to judge (the session store)
        assert [m.decode() for m in client.zrange(key, 0, -1)] == ["s2"]
        assert before is not None and (client.zscore(key, "s2") or 0) > before
        await limits.renew({"s1": ["shared"]})  # taking again is renew's, not extend's
        assert client.zcard(key) == 2
    finally:
        await limits.close()
        client.close()


async def test_a_found_sessions_place_lost_in_a_redis_restart_is_taken_again(
    redis_server: Any,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    key = "runner:found:pool:shared:holders"
    finder = SharedPools(
        RedisLimits(redis_server.url, namespace="found", lease_ttl=0.3),
        clock=FakeClock(),
        ttl=0.3,  # a heartbeat every 100 ms
        ended_elsewhere=lambda ids: [],  # the session is still open
    )
    try:
        finder.hold("s1", ["shared"])
        await finder.drain()
        assert client.zcard(key) == 1
        redis_server.stop()  # it comes back empty: a heartbeat fails meanwhile
        await asyncio.sleep(0.35)
        redis_server.start()
        for _ in range(100):
            await asyncio.sleep(0.05)
            try:
                if client.zcard(key) == 1:
                    break
            except redis.ConnectionError:
                pass
        assert client.zcard(key) == 1
    finally:
        await finder.close()
        client.close()
