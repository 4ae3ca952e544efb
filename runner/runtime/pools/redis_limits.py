"""Pool limits in Redis, shared by every runtime process of an environment, on any host.

Role: the `SharedLimits` backend chosen when the Environment declares `redis:`. Every operation
is one Lua script (`runner.runtime.pools.redis_scripts`: atomic on the server), timed by the
server's clock (`TIME`), so processes on hosts with skewed clocks agree on leases and windows.

Keys, per environment and pool (`runner:<env>:pool:<pool>:`):
  holders   sorted set: session id -> lease expiry (ms); expired members are dropped first
  waiters   sorted set: session id -> rank * 1e13 + arrival (ms): priority, then arrival
  waitexp   sorted set: session id -> expiry of its place in line (a dead waiter leaves it)
  waitproc  hash: session id -> the process it waits in (whose wake list to push it on)
  tokens    sorted set: "<reservation>:<tokens>" -> when (ms), the sliding 60 s window
  tokensum  the sum of `tokens`, kept by the scripts

and per process, `runner:<env>:pool:wake:<process>`: a list of this process's waiters that a
release elsewhere made eligible (the release pushes the waiter that the freed place lets in; the
process reads the list with BLPOP and wakes that waiter at once instead of at its next poll).

A take succeeds in a pool when `holders + waiters ahead < limit` (ahead: a better rank, or the
same rank and earlier); a caller that is not in line counts every waiter of its rank or better
as ahead, so a queued caller is never overtaken by a newcomer of the same priority.

The URL may carry credentials: it is never logged; `where` is the URL with them scrubbed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from runner.errors import scrub_userinfo
from runner.runtime.pools import redis_scripts as scripts
from runner.runtime.pools.limits_backend import Blocked
from runner.runtime.redis_wire import RedisWire, close_client

__all__ = ["RedisLimits"]

WAKE_BLOCK_S = 5  # a wake list's BLPOP waits this long, then asks again


class RedisLimits:
    """`SharedLimits` on one Redis server (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        lease_ttl: float = 30.0,
        connect_timeout: float = 1.0,
    ) -> None:
        self.where = scrub_userinfo(url.split("?", 1)[0])
        self._redis: Any = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=max(connect_timeout, 2.0),
        )
        self._prefix = f"runner:{namespace}:pool:"
        self._ttl_ms = int(lease_ttl * 1000)
        self._scripts = {
            name: self._redis.register_script(text)
            for name, text in {
                "take": scripts.TAKE,
                "leave": scripts.LEAVE,
                "release": scripts.RELEASE,
                "renew": scripts.RENEW,
                "extend": scripts.EXTEND,
                "held": scripts.HELD,
                "reserve": scripts.RESERVE,
                "settle": scripts.SETTLE,
                "charge": scripts.CHARGE,
            }.items()
        }
        self._pending: list[tuple[str, list[str], list[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wire = RedisWire(self._redis, timeout=max(connect_timeout, 2.0))  # the flusher's
        self.process = uuid.uuid4().hex  # this process, for the waiters' wake lists
        self._wake_prefix = f"{self._prefix}wake:"
        self._limits: dict[str, int] = {}  # pool -> the limit this process took places under
        self.on_wake: Callable[[str], None] | None = None  # a waiter here may take its place
        self._waker: asyncio.Task[None] | None = None

    def _key(self, pool: str, part: str) -> str:
        return f"{self._prefix}{pool}:{part}"

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script; the scripts asked for in the same turn of the event loop (the
        sessions of this process admitted, released, charged at one moment) go in one write
        on the flusher's connection (`RedisWire`): one round trip, in the order asked."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((name, keys, args, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let this moment's other calls join
        while self._pending:
            batch, self._pending = self._pending, []
            try:  # the batch's EVALSHAs as one write, their replies in order
                results = await self._wire.call(
                    [
                        ("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args)
                        for name, keys, args, _ in batch
                    ]
                )
                for i, result in enumerate(results):
                    if isinstance(result, NoScriptError):  # a restarted Redis: load, rerun
                        name, keys, args, _ = batch[i]
                        try:
                            results[i] = await self._scripts[name](keys=keys, args=args)
                        except Exception as exc:
                            results[i] = exc
            except Exception as exc:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def take(
        self, holder: str, pools: Sequence[tuple[str, int]], *, rank: int, queue: bool
    ) -> str | None:
        keys: list[str] = []
        for name, limit in pools:
            self._limits[name] = limit
            keys += [
                self._key(name, "holders"),
                self._key(name, "waiters"),
                self._key(name, "waitexp"),
                self._key(name, "waitproc"),
            ]
        if queue:
            self._start_waking()
        args = [holder, rank, "1" if queue else "0", self._ttl_ms, self._ttl_ms, self.process]
        full = int(await self._run("take", keys, args + [limit for _, limit in pools]))
        return None if full == 0 else pools[full - 1][0]

    async def leave(self, holder: str, pools: Sequence[str]) -> None:
        keys = [self._key(p, part) for p in pools for part in ("waiters", "waitexp", "waitproc")]
        if keys:
            await self._run("leave", keys, [holder])

    async def release(self, holder: str, pools: Sequence[str]) -> None:
        if pools:
            keys = [
                self._key(p, part) for p in pools for part in ("holders", "waiters", "waitproc")
            ]
            limits = [self._limits.get(p, 0) for p in pools]  # 0: unknown here, nobody told
            await self._run("release", keys, [holder, self._wake_prefix, *limits])

    # ------------------------------------------------------------ wake-ups

    def _start_waking(self) -> None:
        if self.on_wake is not None and (self._waker is None or self._waker.done()):
            self._waker = asyncio.get_running_loop().create_task(self._wake_ups())

    async def _wake_ups(self) -> None:
        """Tell `on_wake` each waiter of this process a release elsewhere made eligible (its
        wake list, read with BLPOP on a connection of its own); a failure waits for the next
        queued take to start this again (the waiters poll meanwhile)."""
        wire = RedisWire(self._redis, timeout=WAKE_BLOCK_S + 2.0)
        key = self._wake_prefix + self.process
        try:
            while True:
                reply = await wire.one("BLPOP", key, WAKE_BLOCK_S)
                if reply and self.on_wake is not None:
                    self.on_wake(reply[1].decode())
        except Exception:
            return  # the next queued take starts it again
        finally:
            await wire.drop()

    async def renew(self, holders: Mapping[str, Sequence[str]]) -> None:
        keys, args = self._leases(holders)
        if keys:
            await self._run("renew", keys, args)

    async def extend(self, holders: Mapping[str, Sequence[str]]) -> list[str]:
        keys, args = self._leases(holders)
        if not keys:
            return []
        missing = await self._run("extend", keys, args)  # positions in KEYS, from 1
        return sorted({str(args[int(i)]) for i in missing})

    def _leases(self, holders: Mapping[str, Sequence[str]]) -> tuple[list[str], list[Any]]:
        """RENEW's and EXTEND's keys and arguments: the lease's length, then one holder per
        (pool, holder) key."""
        keys: list[str] = []
        args: list[Any] = [self._ttl_ms]
        for holder, pools in holders.items():
            for pool in pools:
                keys.append(self._key(pool, "holders"))
                args.append(holder)
        return keys, args

    async def held(self, pool: str) -> int:
        return int(await self._run("held", [self._key(pool, "holders")], []))

    def _token_keys(self, pools: Sequence[str]) -> list[str]:
        return [self._key(p, part) for p in pools for part in ("tokens", "tokensum")]

    def _new_id(self) -> str:
        return uuid.uuid4().hex

    async def reserve(
        self, pools: Sequence[tuple[str, int]], tokens: int, *, estimate: int
    ) -> tuple[Blocked | None, str]:
        reservation = self._new_id()
        keys = self._token_keys([name for name, _ in pools])
        args = [tokens, estimate, reservation, *(limit for _, limit in pools)]
        answer = await self._run("reserve", keys, args)
        index = int(answer[0])
        if index == 0:
            return None, f"{reservation}:{tokens}"
        name, limit = pools[index - 1]
        used, wait_ms = int(answer[1]), int(answer[2])
        retry = float("inf") if wait_ms < 0 else wait_ms / 1000.0
        return (name, limit, used, retry), ""

    async def settle(self, reservation: str, pools: Sequence[str], tokens: int) -> None:
        if pools and reservation:
            await self._run("settle", self._token_keys(pools), [reservation, tokens])

    async def charge(self, pools: Sequence[str], tokens: int) -> None:
        if pools and tokens > 0:
            await self._run("charge", self._token_keys(pools), [self._new_id(), tokens])

    async def window(self, pool: str) -> list[tuple[float, int]]:
        """The (seconds, tokens) entries of a pool's window (tests and the bench)."""
        entries = await self._redis.zrange(self._key(pool, "tokens"), 0, -1, withscores=True)
        return [(score / 1000.0, int(member.rsplit(b":", 1)[1])) for member, score in entries]

    async def close(self) -> None:
        if self._waker is not None:
            self._waker.cancel()
            await asyncio.wait({self._waker}, timeout=1.0)
        await self._wire.drop()
        await close_client(self._redis)
