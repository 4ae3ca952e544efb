"""Pool limits shared by runtime processes through a real Redis (a private redis-server per
module, so stopping it disturbs nobody): concurrency never above the limit across processes,
one token window for all, a dead process's places back after its lease, and admission that
refuses clearly while Redis is down and recovers after, live sessions going on."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtime_support import AUTH, contract_project
from worker import ENV, POOL

from runner import Lifecycle
from runner.runtime.errors import (
    PoolLimitError,
    SharedLimitsUnavailableError,
)

HOLDERS = "runner:local:pool:shared:holders"


def holders(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.zcard(HOLDERS))
    finally:
        client.close()


def flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def test_two_processes_never_hold_more_than_the_limit(redis_server: Any, spawn: Any) -> None:
    flush(redis_server.url)
    a = spawn("a", do="hold", redis=redis_server.url, n=2, sessions=2)
    assert a.line() == {"created": 2, "refused": 0}
    b = spawn("b", do="hold", redis=redis_server.url, n=2, sessions=2)
    assert b.line() == {"created": 0, "refused": 2}  # alone, each process would have taken 2
    assert holders(redis_server.url) == 2
    assert a.result() == {"ended": 2}  # a ends its two sessions: their places come back
    assert holders(redis_server.url) == 0
    c = spawn("c", do="hold", redis=redis_server.url, n=3, sessions=2)
    assert c.line() == {"created": 2, "refused": 1}
    assert c.result() == {"ended": 2} and b.result() == {"ended": 0}


def test_churn_of_two_processes_stays_within_the_limit(redis_server: Any, spawn: Any) -> None:
    flush(redis_server.url)
    job = {
        "do": "churn",
        "redis": redis_server.url,
        "sessions": 2,
        "seconds": 4,
        "counter": "test:active",
        "concurrency": 4,
        "hold": 0.02,
        "wait": 3,
    }
    first, second = spawn("a", **job), spawn("b", **job)
    one, two = first.result(), second.result()
    assert one["top"] <= 2 and two["top"] <= 2
    assert one["created"] > 5 and two["created"] > 5  # both processes got slots
    assert holders(redis_server.url) == 0  # every session ended gave its place back


def test_a_dead_processs_places_come_back_after_its_lease(redis_server: Any, spawn: Any) -> None:
    flush(redis_server.url)
    a = spawn("a", do="hold", redis=redis_server.url, n=2, sessions=2, ttl_ms=1500)
    assert a.line()["created"] == 2
    a.proc.kill()  # kill -9: nothing released
    a.proc.wait(10)
    assert holders(redis_server.url) == 2
    time.sleep(1.6)
    b = spawn("b", do="hold", redis=redis_server.url, n=2, sessions=2, ttl_ms=1500)
    assert b.line() == {"created": 2, "refused": 0}
    b.proc.kill()


def test_tokens_per_minute_is_one_window_for_every_process(redis_server: Any, spawn: Any) -> None:
    flush(redis_server.url)
    job = {"do": "turns", "redis": redis_server.url, "sessions": 5, "tokens": 2000}
    first = spawn("a", **job).result()
    assert first["refused"] is not None and first["sent"] >= 1
    second = spawn("b", **job).result()
    # the second process starts on the first one's window: what was left of it only (a turn
    # costs more as its conversation grows: alone, the second would have sent as many)
    assert second["refused"] is not None and "max_tokens_per_minute 2,000" in second["refused"]
    assert second["used"] >= first["used"] and second["sent"] < first["sent"]
    client = redis.Redis.from_url(redis_server.url)
    try:
        spent = int(client.get("runner:local:pool:shared:tokensum") or 0)
    finally:
        client.close()
    assert first["used"] < spent <= 2000 * 1.05  # one window; over only by a turn's growth


def _project(tmp_path: Path, url: str, name: str, **limits: Any) -> Any:
    return contract_project(
        ENV.format(data_dir=tmp_path / name / "store") + f"redis: {url}\n",
        POOL.format(sessions=limits.get("sessions", 2), tokens=limits.get("tokens", 100000)),
    )


async def test_redis_down_refuses_admission_clearly_and_recovers(
    tmp_path: Path, redis_server: Any
) -> None:
    flush(redis_server.url)
    environ = {"RUNNER_POOL_LEASE_TTL_MS": "900"}
    project = _project(tmp_path, redis_server.url, "a", tokens=100000)
    async with Lifecycle.open(
        project, env="local", registry_path=tmp_path / "a.db", environ=environ
    ) as lc:
        live = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        redis_server.stop()
        with pytest.raises(SharedLimitsUnavailableError) as refused:
            await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        message = str(refused.value)
        assert f"redis://127.0.0.1:{redis_server.port}/0" in message and "refused" in message
        reply = await live.send("Is my session still working?")  # live sessions go on
        assert reply.text
        redis_server.start()
        for _ in range(50):  # the client reconnects on its next call
            try:
                second = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
                break
            except SharedLimitsUnavailableError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("admission did not recover after Redis came back")
        # the restarted Redis kept nothing: the live session is held again by the heartbeat,
        # so the limit of 2 counts it
        for _ in range(50):
            if holders(redis_server.url) == 2:
                break
            await asyncio.sleep(0.1)
        assert holders(redis_server.url) == 2
        with pytest.raises(PoolLimitError):
            await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        await second.end("done")
        await live.end("done")


async def test_waiting_across_processes_is_served_by_priority(
    tmp_path: Path, redis_server: Any
) -> None:
    flush(redis_server.url)
    project_a = _project(tmp_path, redis_server.url, "a", sessions=1)
    project_b = _project(tmp_path, redis_server.url, "b", sessions=1)
    async with (
        Lifecycle.open(project_a, env="local", registry_path=tmp_path / "a.db", environ={}) as a,
        Lifecycle.open(project_b, env="local", registry_path=tmp_path / "b.db", environ={}) as b,
    ):
        held = await a.create_agent_session(agent="tech-advisor", auth=AUTH)
        low = asyncio.create_task(
            b.create_agent_session(agent="tech-advisor", auth=AUTH, wait=10, priority="low")
        )
        await asyncio.sleep(0.3)
        urgent = asyncio.create_task(
            a.create_agent_session(agent="tech-advisor", auth=AUTH, wait=10, priority="urgent")
        )
        await asyncio.sleep(0.3)
        assert not low.done() and not urgent.done()
        await held.end("done")
        first = await urgent  # the urgent waiter of the other runtime goes first
        await asyncio.sleep(0.3)
        assert not low.done()
        await first.end("done")
        await (await low).end("done")


async def test_no_redis_extra_or_bad_url_is_a_clear_error(tmp_path: Path) -> None:
    project = _project(tmp_path, "${RUNNER_TEST_REDIS_URL}", "a")
    with pytest.raises(Exception, match="RUNNER_TEST_REDIS_URL"):
        await Lifecycle.open(project, env="local", registry_path=tmp_path / "a.db", environ={})


async def test_many_processes_on_one_host_share_limits_in_the_registry(
    tmp_path: Path, make_host_project: Any
) -> None:
    environ = {"RUNNER_POOL_LIMITS": "host"}
    project = make_host_project()
    async with (
        Lifecycle.open(project, env="local", registry_path=tmp_path / "s.db", environ=environ) as a,
        Lifecycle.open(project, env="local", registry_path=tmp_path / "s.db", environ=environ) as b,
    ):
        one = await a.create_agent_session(agent="tech-advisor", auth=AUTH)
        await b.create_agent_session(agent="tech-advisor", auth=AUTH)
        with pytest.raises(PoolLimitError):
            await a.create_agent_session(agent="tech-advisor", auth=AUTH)
        with pytest.raises(PoolLimitError):
            await b.create_agent_session(agent="tech-advisor", auth=AUTH)
        await one.end("done")
        await asyncio.sleep(0.05)  # the release is written in the background
        third = await b.create_agent_session(agent="tech-advisor", auth=AUTH)
        assert third.state == "active"


@pytest.fixture
def make_host_project(tmp_path: Path) -> Any:
    def make() -> Any:
        env = "\n".join(line for line in ENV.splitlines() if not line.startswith("redis:"))
        return contract_project(
            env.format(data_dir=tmp_path / "store"), POOL.format(sessions=2, tokens=100000)
        )

    return make


def test_serve_answers_503_naming_redis_without_its_credentials() -> None:
    from runner.serve.errors import from_exception

    cause = ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")
    error = from_exception(SharedLimitsUnavailableError("redis://:s3cret@127.0.0.1:6390/0", cause))
    assert error is not None
    assert (error.status, error.code, error.headers) == (
        503,
        "limits_unavailable",
        {"Retry-After": "5"},
    )
    assert "127.0.0.1:6390" in error.message and "s3cret" not in error.message
