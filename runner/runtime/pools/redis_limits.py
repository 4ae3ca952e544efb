"""Pool limits in Redis, shared by every runtime process of an environment, on any host.

Role: the `SharedLimits` backend chosen when the Environment declares `redis:`. Every operation
is one Lua script (atomic on the server), timed by the server's clock (`TIME`), so processes on
hosts with skewed clocks agree on leases and windows.

Keys, per environment and pool (`runner:<env>:pool:<pool>:`):
  holders   sorted set: session id -> lease expiry (ms); expired members are dropped first
  waiters   sorted set: session id -> rank * 1e13 + arrival (ms): priority, then arrival
  waitexp   sorted set: session id -> expiry of its place in line (a dead waiter leaves it)
  tokens    sorted set: "<reservation>:<tokens>" -> when (ms), the sliding 60 s window
  tokensum  the sum of `tokens`, kept by the scripts

A take succeeds in a pool when `holders + waiters ahead < limit` (ahead: a better rank, or the
same rank and earlier); a caller that is not in line counts every waiter of its rank or better
as ahead, so a queued caller is never overtaken by a newcomer of the same priority.

The URL may carry credentials: it is never logged; `where` is the URL with them scrubbed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from runner.errors import scrub_userinfo
from runner.runtime.pools.shared import Blocked
from runner.runtime.redis_wire import RedisWire

__all__ = ["RedisLimits"]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_TAKE = (
    _NOW
    + """
local holder, rank, queue = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local ttl, wttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local n = #KEYS / 3
local full = 0
for i = 1, n do
  local h, w, we = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('ZREMRANGEBYSCORE', h, '-inf', now)
  local gone = redis.call('ZRANGEBYSCORE', we, '-inf', now)
  if #gone > 0 then
    redis.call('ZREM', w, unpack(gone))
    redis.call('ZREM', we, unpack(gone))
  end
  if full == 0 and not redis.call('ZSCORE', h, holder) then
    local mine = redis.call('ZSCORE', w, holder)
    local ahead
    if mine then
      ahead = redis.call('ZCOUNT', w, '-inf', '(' .. mine)
    else
      ahead = redis.call('ZCOUNT', w, '-inf', string.format('%d', (rank + 1) * 1e13 - 1))
    end
    if redis.call('ZCARD', h) + ahead >= tonumber(ARGV[5 + i]) then full = i end
  end
end
if full == 0 then
  for i = 1, n do
    redis.call('ZADD', KEYS[3 * i - 2], now + ttl, holder)
    redis.call('ZREM', KEYS[3 * i - 1], holder)
    redis.call('ZREM', KEYS[3 * i], holder)
  end
  return 0
end
if queue then
  for i = 1, n do
    redis.call('ZADD', KEYS[3 * i - 1], 'NX', string.format('%d', rank * 1e13 + now), holder)
    redis.call('ZADD', KEYS[3 * i], now + wttl, holder)
  end
end
return full
"""
)

_REMOVE = """
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 0
"""

_RENEW = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], now + ttl, ARGV[i + 1]) end
return 0
"""
)

_HELD = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)

_TRIM = """
local function trim(z, s, cutoff)
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  if #old > 0 then
    local sub = 0
    for _, m in ipairs(old) do sub = sub + tonumber(string.match(m, ':(%-?%d+)$')) end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
    redis.call('DECRBY', s, sub)
  end
  if redis.call('ZCARD', z) == 0 then
    redis.call('SET', s, 0)
    return 0
  end
  return tonumber(redis.call('GET', s) or '0')
end
"""

_RESERVE = (
    _NOW
    + _TRIM
    + """
local tokens, est, id = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local n = #KEYS / 2
for i = 1, n do
  local z, s, limit = KEYS[2 * i - 1], KEYS[2 * i], tonumber(ARGV[3 + i])
  local used = trim(z, s, now - 60000)
  if est > limit then return {i, used, -1} end
  local want = math.max(math.min(tokens, limit), 1)
  if used + want > limit then
    local need, freed, at = used + want - limit, 0, now
    local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
    for j = 1, #entries, 2 do
      freed = freed + tonumber(string.match(entries[j], ':(%-?%d+)$'))
      at = tonumber(entries[j + 1]) + 60000
      if freed >= need then break end
    end
    return {i, used, math.max(at - now, 0)}
  end
end
for i = 1, n do
  redis.call('ZADD', KEYS[2 * i - 1], now, id .. ':' .. tokens)
  redis.call('INCRBY', KEYS[2 * i], tokens)
end
return {0}
"""
)

_SETTLE = """
local old = ARGV[1]
local id = string.match(old, '^(.*):%-?%d+$')
local before = tonumber(string.match(old, ':(%-?%d+)$'))
local tokens = tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local z, s = KEYS[2 * i - 1], KEYS[2 * i]
  local at = redis.call('ZSCORE', z, old)
  if at then
    redis.call('ZREM', z, old)
    if tokens > 0 then redis.call('ZADD', z, at, id .. ':' .. tokens) end
    redis.call('INCRBY', s, tokens - before)
  end
end
return 0
"""

_CHARGE = (
    _NOW
    + """
for i = 1, #KEYS / 2 do
  redis.call('ZADD', KEYS[2 * i - 1], now, ARGV[1] .. ':' .. ARGV[2])
  redis.call('INCRBY', KEYS[2 * i], tonumber(ARGV[2]))
end
return 0
"""
)


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
                "take": _TAKE,
                "remove": _REMOVE,
                "renew": _RENEW,
                "held": _HELD,
                "reserve": _RESERVE,
                "settle": _SETTLE,
                "charge": _CHARGE,
            }.items()
        }
        self._pending: list[tuple[str, list[str], list[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wire = RedisWire(self._redis, timeout=max(connect_timeout, 2.0))  # the flusher's

    def _key(self, pool: str, part: str) -> str:
        return f"{self._prefix}{pool}:{part}"

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script; the scripts asked for in the same turn of the event loop (the
        sessions of this process admitted, released, charged at one moment) share one
        pipeline: one round trip, in the order they were asked."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((name, keys, args, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let this moment's other calls join
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._send(batch)
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

    async def _send(
        self, batch: list[tuple[str, list[str], list[Any], asyncio.Future[Any]]]
    ) -> list[Any]:
        """The batch's EVALSHAs as one write, then their replies in order (`RedisWire`)."""
        return await self._wire.call(
            [
                ("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args)
                for name, keys, args, _ in batch
            ]
        )

    async def take(
        self, holder: str, pools: Sequence[tuple[str, int]], *, rank: int, queue: bool
    ) -> str | None:
        keys: list[str] = []
        for name, _ in pools:
            keys += [
                self._key(name, "holders"),
                self._key(name, "waiters"),
                self._key(name, "waitexp"),
            ]
        args = [holder, rank, "1" if queue else "0", self._ttl_ms, self._ttl_ms]
        full = int(await self._run("take", keys, args + [limit for _, limit in pools]))
        return None if full == 0 else pools[full - 1][0]

    async def leave(self, holder: str, pools: Sequence[str]) -> None:
        keys = [self._key(p, part) for p in pools for part in ("waiters", "waitexp")]
        if keys:
            await self._run("remove", keys, [holder])

    async def release(self, holder: str, pools: Sequence[str]) -> None:
        if pools:
            await self._run("remove", [self._key(p, "holders") for p in pools], [holder])

    async def renew(self, holders: Mapping[str, Sequence[str]]) -> None:
        keys: list[str] = []
        args: list[Any] = [self._ttl_ms]
        for holder, pools in holders.items():
            for pool in pools:
                keys.append(self._key(pool, "holders"))
                args.append(holder)
        if keys:
            await self._run("renew", keys, args)

    async def held(self, pool: str) -> int:
        return int(await self._run("held", [self._key(pool, "holders")], []))

    def _token_keys(self, pools: Sequence[str]) -> list[str]:
        return [self._key(p, part) for p in pools for part in ("tokens", "tokensum")]

    def _new_id(self) -> str:
        import uuid

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
        await self._wire.drop()
        close = getattr(self._redis, "aclose", None) or self._redis.close
        await close()
