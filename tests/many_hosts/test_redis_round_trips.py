"""Fewer Redis round trips, same guarantees, against a real redis-server: an instance's events
of one moment travel in one message and arrive complete and in order; admissions pipelined in
one moment still work after Redis lost its scripts (a restart, SCRIPT FLUSH); a place another
process frees reaches that process's waiter at once, not at its next poll; the wire and the event
relay get over connections the server closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from runner.runtime.clock import SystemClock
from runner.runtime.events import Event, EventBus
from runner.runtime.events_redis import RedisEventRelay
from runner.runtime.pools.redis_limits import RedisLimits
from runner.runtime.pools.shared import SharedPools
from runner.runtime.redis_wire import RedisWire


async def _until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _publishes(client: Any) -> int:
    stats = client.info("commandstats").get("cmdstat_publish", {})
    return int(stats.get("calls", 0))


@dataclass
class _Relays:
    """Two instances' relays on one channel: `sender_bus` emits, `seen` is what the
    receiver's `session:*` subscriber got from the sender."""

    sender_bus: EventBus
    sender: RedisEventRelay
    receiver: RedisEventRelay
    seen: list[Event]


@asynccontextmanager
async def _relays(url: str, namespace: str) -> AsyncIterator[_Relays]:
    clock = SystemClock()
    sender_bus, receiver_bus = EventBus(clock), EventBus(clock)
    pair = _Relays(
        sender_bus,
        RedisEventRelay(url, bus=sender_bus, namespace=namespace),
        RedisEventRelay(url, bus=receiver_bus, namespace=namespace),
        [],
    )
    receiver_bus.on("session:*", pair.seen.append, remote=True)
    await pair.sender.start()
    await pair.receiver.start()
    try:
        yield pair
    finally:
        await pair.sender.close()
        await pair.receiver.close()


async def test_events_of_one_moment_arrive_in_one_message_in_order(redis_server: Any) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    try:
        async with _relays(redis_server.url, "batch") as relays:
            published_before = _publishes(admin)
            for n in range(5):  # one moment: no await between them
                relays.sender_bus.emit(
                    "session:state-changed", {"session_id": f"s{n}", "to": "ended"}
                )
                relays.sender_bus.emit("agent:created", {"name": f"a{n}"})  # nobody wants it
            seen = relays.seen
            await _until(lambda: len(seen) >= 5)
            await asyncio.sleep(0.2)  # anything extra would have arrived by now
            assert [e.data["session_id"] for e in seen] == [f"s{n}" for n in range(5)]
            assert {e.origin for e in seen} == {relays.sender.instance}
            assert relays.sender.published == 10 and relays.receiver.received == 5
            assert _publishes(admin) - published_before == 1
    finally:
        admin.close()


async def test_pipelined_admissions_survive_redis_losing_its_scripts(redis_server: Any) -> None:
    limits = RedisLimits(redis_server.url, namespace="noscript")
    admin = redis.Redis.from_url(redis_server.url)
    try:
        pools = [("p", 3)]
        assert await limits.take("warm", pools, rank=0, queue=False) is None  # scripts loaded
        admin.script_flush()
        # asked in one moment: one pipeline, every EVALSHA answered NOSCRIPT
        taken = await asyncio.gather(
            *(limits.take(f"s{n}", pools, rank=0, queue=False) for n in range(4))
        )
        assert sorted(taken, key=str) == [None, None, "p", "p"]  # 3 places: warm + 2
        assert await limits.held("p") == 3
    finally:
        admin.close()
        await limits.close()


async def test_a_place_freed_by_another_process_wakes_its_waiter_before_the_poll(
    redis_server: Any,
) -> None:
    """Two processes' sides of one pool (each its own `RedisLimits`: its own wake list). B's
    waiter polls only every 30 s; A's release must reach it through B's wake list at once."""
    first = SharedPools(RedisLimits(redis_server.url, namespace="wake"), clock=SystemClock())
    second = SharedPools(
        RedisLimits(redis_server.url, namespace="wake"), clock=SystemClock(), poll=30.0
    )
    pools = [("p", 1)]
    try:
        assert await first.acquire("held", pools, rank=0, wait=None) is None
        waiter = asyncio.create_task(second.acquire("waiting", pools, rank=0, wait=20.0))
        await asyncio.sleep(0.3)
        assert not waiter.done()  # the only place is A's
        first.release("held", ["p"])
        assert await asyncio.wait_for(waiter, 5.0) is None  # B holds it, long before 30 s
        assert await second.backend.held("p") == 1
        refused = await first.acquire("late", pools, rank=0, wait=None)
        assert refused is not None and refused[0] == "p"
    finally:
        second.release("waiting", ["p"])
        await first.close()
        await second.close()


async def test_a_wire_batch_keeps_each_reply_and_survives_a_killed_connection(
    redis_server: Any,
) -> None:
    """`RedisWire`: an error reply is that command's exception, the others' replies stand, in
    order; a connection the server closed fails the call that finds it, and the next call
    connects again."""
    client = aioredis.Redis.from_url(redis_server.url)
    admin = redis.Redis.from_url(redis_server.url)
    wire = RedisWire(client, timeout=2.0)
    try:
        replies = await wire.call(
            [
                ("SET", "wire:a", "1"),
                ("INCR", "wire:a"),
                ("LPUSH", "wire:a", "x"),
                ("GET", "wire:a"),
            ]
        )
        assert replies[:2] == [b"OK", 2]  # raw replies: no client-side callbacks
        assert isinstance(replies[2], redis.exceptions.ResponseError)  # WRONGTYPE, alone
        assert replies[3] == b"2"
        admin.client_kill_filter(_type="normal", skipme=True)  # every client but admin
        with pytest.raises(redis.exceptions.ConnectionError):
            await wire.call([("GET", "wire:a")])
        assert await wire.call([("GET", "wire:a")]) == [b"2"]  # a new connection
    finally:
        await wire.drop()
        admin.close()
        await (getattr(client, "aclose", None) or client.close)()  # aclose: redis >= 5.0.1


async def test_the_event_relay_subscribes_again_after_its_connections_are_killed(
    redis_server: Any,
) -> None:
    """The server closes every connection of both relays (CLIENT KILL): the receiver
    subscribes again and the sender publishes again, without either being restarted."""
    admin = redis.Redis.from_url(redis_server.url)
    try:
        async with _relays(redis_server.url, "killed") as relays:
            seen = relays.seen
            relays.sender_bus.emit("session:state-changed", {"session_id": "before"})
            await _until(lambda: len(seen) == 1)
            for kind in ("pubsub", "normal"):
                admin.client_kill_filter(_type=kind, skipme=True)
            n = 0
            while not any(e.data["session_id"].startswith("after") for e in seen):
                assert n < 200, "no event arrived after the connections were killed"
                relays.sender_bus.emit("session:state-changed", {"session_id": f"after{n}"})
                n += 1
                await asyncio.sleep(0.05)
            assert seen[0].data["session_id"] == "before"
    finally:
        admin.close()
