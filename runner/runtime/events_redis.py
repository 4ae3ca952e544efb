"""Events across instances: the runtime's event bus relayed through Redis pub/sub.

Role: with `redis:` on the Environment, every runtime process (an instance) publishes each
event it emits on the environment's channel (`runner:<env>:events`), stamped with its instance
id, and re-emits to its own subscribers (`lc.on(...)`, `runner serve`'s Socket.io layer) the
events the other instances published. An `lc.on` subscriber therefore receives every event of
the environment, whichever instance produced it, once: an instance skips its own messages, and
a re-emitted event is never published again (`EventBus.deliver`).

Delivery is at most once, like Redis pub/sub itself: while Redis is unreachable, events are
still delivered locally, publishing drops what it cannot send (counted in `dropped`, logged
once per outage), and the subscriber reconnects with a backoff. Publishing keeps the order of
one instance's events (one publisher task, one queue bounded at `MAX_QUEUE`).

A message carries every event one instance emitted within `BATCH_WAIT_S` (at most `BATCH`):
its instance id on the first line, then each event's type and JSON body, a line each (JSON
has no raw newline). Every instance receives every message, its own included, so one message
per moment instead of one per event is what keeps the relay's cost flat as instances are added
(one PUBLISH, and one delivery per instance, for a lifecycle's several events); a receiver
drops its own messages, and the events nobody here subscribed to, unparsed.

The URL may carry credentials: it is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

import redis.asyncio as aioredis

from runner.errors import scrub_userinfo
from runner.runtime.events import Event, EventBus
from runner.runtime.redis_wire import RedisWire, close_client

__all__ = ["BATCH", "BATCH_WAIT_S", "MAX_QUEUE", "RedisEventRelay"]

log = logging.getLogger("runner.runtime.events")

MAX_QUEUE = 10_000
BATCH_WAIT_S = 0.005  # publishing waits this long for more events: one message for many
BATCH = 500
HEALTH_CHECK_S = 10.0  # a quiet subscription is PINGed after this long (and dropped if mute)


class RedisEventRelay:
    """Publishes this instance's events and delivers the others' (see the module docstring)."""

    def __init__(self, url: str, *, bus: EventBus, namespace: str, instance: str | None = None):
        self.where = scrub_userinfo(url.split("?", 1)[0])
        self.instance = instance or uuid.uuid4().hex
        if "\n" in self.instance:
            raise ValueError("an instance id is one line")
        self._instance_bytes = self.instance.encode()
        self.channel = f"runner:{namespace}:events"
        self._bus = bus
        self._redis: Any = aioredis.Redis.from_url(url, socket_connect_timeout=1.0)
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(MAX_QUEUE)
        self._closing = False
        self._listener: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.published = 0
        self.received = 0
        self.dropped = 0

    async def start(self, *, timeout: float = 5.0) -> None:
        """Subscribe, then relay every event of the bus (waits until subscribed, or `timeout`:
        an instance that starts while Redis is down keeps retrying in the background)."""
        loop = asyncio.get_running_loop()
        self._listener = loop.create_task(self._listen())
        self._publisher = loop.create_task(self._publish())
        self._bus.relay = self._relay
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout)

    def _relay(self, event: Event) -> None:
        # "<type>\n<json>": a receiver skips the types nobody there wants unparsed
        body = json.dumps(
            {"d": dict(event.data), "a": event.at}, default=str, separators=(",", ":")
        )
        try:
            self._queue.put_nowait(f"{event.type}\n{body}")
        except asyncio.QueueFull:
            self.dropped += 1

    async def _publish(self) -> None:
        failing = False
        queue = self._queue
        head = self.instance
        wire = RedisWire(self._redis, timeout=2.0)
        try:
            while not self._closing or not queue.empty():
                first = await queue.get()
                if not self._closing:
                    await asyncio.sleep(BATCH_WAIT_S)  # let the events of this moment pile up
                batch = [] if first is None else [first]
                while not queue.empty() and len(batch) < BATCH:
                    event = queue.get_nowait()
                    if event is not None:
                        batch.append(event)
                if not batch:
                    continue
                try:
                    await wire.one("PUBLISH", self.channel, "\n".join([head, *batch]))
                    self.published += len(batch)
                    if failing:
                        log.warning("events: publishing to %s again", self.where)
                    failing = False
                except Exception as exc:
                    self.dropped += len(batch)
                    if not failing:
                        log.warning(
                            "events: %s unreachable, events not relayed: %s", self.where, exc
                        )
                    failing = True
        finally:
            await wire.drop()

    async def _listen(self) -> None:
        delay = 0.1
        wire = RedisWire(self._redis, timeout=2.0)
        while not self._closing:
            try:
                await wire.send("SUBSCRIBE", self.channel)
                pinged = False
                while not self._closing:
                    try:
                        message = await wire.read(HEALTH_CHECK_S)
                    except TimeoutError:
                        if pinged:  # not even the PING came back: the connection is gone
                            raise ConnectionError("no answer to PING") from None
                        await wire.send("PING")
                        pinged = True
                        continue
                    pinged = False
                    kind = message[0] if isinstance(message, list) and message else None
                    if kind == b"message":
                        self._receive(message[2])
                    elif kind == b"subscribe":
                        self._subscribed.set()
                        delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("events: subscription to %s lost (%s); reconnecting", self.where, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                await wire.drop()

    def _receive(self, raw: Any) -> None:
        lines = bytes(raw).split(b"\n")
        if lines[0] == self._instance_bytes:
            return
        if len(lines) % 2 == 0 or len(lines) < 3:
            log.warning("events: a message on %s is not a runner event; ignored", self.channel)
            return
        origin = lines[0].decode("utf-8", "replace")
        wants = self._bus.wants_remote
        for index in range(1, len(lines), 2):
            kind = lines[index].decode("utf-8", "replace")
            if not wants(kind):
                continue
            try:
                body = json.loads(lines[index + 1])
                data, at = body["d"], float(body["a"])
            except (ValueError, KeyError, TypeError):
                log.warning("events: a message on %s is not a runner event; ignored", self.channel)
                return
            if not isinstance(data, dict):
                continue
            self.received += 1
            self._bus.deliver(Event(kind, data, at, origin=origin))

    async def close(self, timeout: float = 2.0) -> None:
        """Stop relaying: publish what is queued (up to `timeout`), unsubscribe, disconnect."""
        if self._bus.relay == self._relay:
            self._bus.relay = None
        self._closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)  # wakes the publisher
        if self._publisher is not None:
            _done, pending = await asyncio.wait({self._publisher}, timeout=timeout)
            for task in pending:
                task.cancel()
        tasks = {task for task in (self._listener, self._publisher) if task is not None}
        if self._listener is not None:
            self._listener.cancel()  # it waits for messages: nothing of its own to finish
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(close_client(self._redis), 1.0)
