"""One Redis connection driven directly: many commands in one write, their replies in order.

Role: the paths that talk to Redis for every session (pool admission and token windows in
`runner.runtime.pools.redis_limits`, the event relay's publishing and listening in
`runner.runtime.events_redis`) go through a `RedisWire` rather than redis-py's command layer.
It still is redis-py's connection (its URL handling, authentication, TLS, hiredis parser), but a
batch is packed by hiredis in one call and written at once, and one deadline covers the whole
batch instead of a timer per write and per reply: on a many-hosts run, redis-py's pipeline and
pub/sub layers cost more CPU per session than the runtime's own work around them.

Invariants:
  - Replies come back in the order of the commands; an error reply is that command's
    exception in the list, never raised for the batch (the other replies stand).
  - A connection that failed, timed out or was interrupted in the middle of a batch is
    dropped (its state is unknown) and the next call connects again; the failure is raised.
  - The URL (and its credentials) stays inside redis-py's connection: nothing here logs it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.exceptions import ResponseError

__all__ = ["RedisWire", "close_client"]


class RedisWire:
    """A connection of `client`'s pool settings, used by one task at a time."""

    def __init__(self, client: Any, *, timeout: float) -> None:
        self._client = client
        self.timeout = timeout  # seconds for a whole batch (connecting included)
        self._connection: Any = None

    async def _connected(self) -> Any:
        if self._connection is None:
            connection = self._client.connection_pool.make_connection()
            # no deadline per write or read (redis-py falls back to this): the batch has one
            connection.socket_timeout = None
            await connection.connect()
            self._connection = connection
        return self._connection

    async def call(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send the commands in one write and read their replies (see the invariants)."""
        packed = b"".join(hiredis.pack_command(tuple(command)) for command in commands)
        try:
            async with asyncio.timeout(self.timeout):
                connection = await self._connected()
                await connection.send_packed_command(packed, check_health=False)
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await connection.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
                return replies
        except BaseException:
            await self.drop()
            raise

    async def one(self, *command: Any) -> Any:
        """One command's reply; its error reply raised."""
        reply = (await self.call([command]))[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def send(self, *command: Any) -> None:
        """Write one command without reading its reply (`SUBSCRIBE`, a subscriber's `PING`)."""
        try:
            async with asyncio.timeout(self.timeout):
                connection = await self._connected()
                await connection.send_packed_command(
                    hiredis.pack_command(command), check_health=False
                )
        except BaseException:
            await self.drop()
            raise

    async def read(self, timeout: float) -> Any:
        """The next reply or pushed message (RESP3 pushes included), waiting up to `timeout`
        seconds (TimeoutError: nothing came, the connection is kept)."""
        connection = await self._connected()
        try:
            async with asyncio.timeout(timeout):
                return await connection.read_response(push_request=True)
        except TimeoutError:
            raise
        except BaseException:
            await self.drop()
            raise

    async def drop(self) -> None:
        """Close the connection (the next call opens another)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)


async def close_client(client: Any) -> None:
    """Close a redis-py asyncio client (`aclose` from redis 5.0.1, `close` before)."""
    close = getattr(client, "aclose", None) or client.close
    await close()
