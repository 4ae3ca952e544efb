"""The Lua scripts of the Redis pool limits: each operation one script, atomic on the server.

Role: `RedisLimits` (`runner.runtime.pools.redis_limits`, which documents the keys) sends these
by EVALSHA. Every script reads the time from the server (`TIME`), so processes on hosts with
skewed clocks agree on leases and windows. Keys come from the caller; the one key a script
builds itself is a process's wake list (`RELEASE`), under the prefix it is given.
"""

from __future__ import annotations

__all__ = [
    "CHARGE",
    "EXTEND",
    "HELD",
    "LEAVE",
    "RELEASE",
    "RENEW",
    "RESERVE",
    "SETTLE",
    "TAKE",
]

NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

TAKE = (
    NOW_MS
    + """
local holder, rank, queue = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local ttl, wttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local process = ARGV[6]
local n = #KEYS / 4
local full = 0
for i = 1, n do
  local h, w, we, wp = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  redis.call('ZREMRANGEBYSCORE', h, '-inf', now)
  local gone = redis.call('ZRANGEBYSCORE', we, '-inf', now)
  if #gone > 0 then
    redis.call('ZREM', w, unpack(gone))
    redis.call('ZREM', we, unpack(gone))
    redis.call('HDEL', wp, unpack(gone))
  end
  if full == 0 and not redis.call('ZSCORE', h, holder) then
    local mine = redis.call('ZSCORE', w, holder)
    local ahead
    if mine then
      ahead = redis.call('ZCOUNT', w, '-inf', '(' .. mine)
    else
      ahead = redis.call('ZCOUNT', w, '-inf', string.format('%d', (rank + 1) * 1e13 - 1))
    end
    if redis.call('ZCARD', h) + ahead >= tonumber(ARGV[6 + i]) then full = i end
  end
end
if full == 0 then
  for i = 1, n do
    redis.call('ZADD', KEYS[4 * i - 3], now + ttl, holder)
    if redis.call('ZREM', KEYS[4 * i - 2], holder) == 1 then
      redis.call('ZREM', KEYS[4 * i - 1], holder)
      redis.call('HDEL', KEYS[4 * i], holder)
    end
  end
  return 0
end
if queue then
  for i = 1, n do
    redis.call('ZADD', KEYS[4 * i - 2], 'NX', string.format('%d', rank * 1e13 + now), holder)
    redis.call('ZADD', KEYS[4 * i - 1], now + wttl, holder)
    redis.call('HSET', KEYS[4 * i], holder, process)
  end
end
return full
"""
)

LEAVE = """
for i = 1, #KEYS / 3 do
  redis.call('ZREM', KEYS[3 * i - 2], ARGV[1])
  redis.call('ZREM', KEYS[3 * i - 1], ARGV[1])
  redis.call('HDEL', KEYS[3 * i], ARGV[1])
end
return 0
"""

# Release, and tell the waiter the freed place made eligible (the `free`-th in line: those
# before it were told by earlier releases) through its process's wake list. A hint: the waiter
# still takes its place with `take`, which decides.
RELEASE = """
local holder, prefix = ARGV[1], ARGV[2]
for i = 1, #KEYS / 3 do
  local h, w, wp = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('ZREM', h, holder)
  local limit = tonumber(ARGV[2 + i])
  if limit > 0 and redis.call('ZCARD', w) > 0 then
    local free = limit - redis.call('ZCARD', h)
    if free > 0 then
      local next = redis.call('ZRANGE', w, free - 1, free - 1)
      if #next > 0 then
        local process = redis.call('HGET', wp, next[1])
        if process then
          local list = prefix .. process
          redis.call('RPUSH', list, next[1])
          redis.call('PEXPIRE', list, 60000)
        end
      end
    end
  end
end
return 0
"""

RENEW = (
    NOW_MS
    + """
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], now + ttl, ARGV[i + 1]) end
return 0
"""
)

# RENEW for leases that must not come back once released: existing members only; answers the
# positions (1-based, in KEYS) of the missing ones
EXTEND = (
    NOW_MS
    + """
local ttl, missing = tonumber(ARGV[1]), {}
for i = 1, #KEYS do
  if redis.call('ZADD', KEYS[i], 'XX', 'CH', now + ttl, ARGV[i + 1]) == 0
     and not redis.call('ZSCORE', KEYS[i], ARGV[i + 1]) then
    missing[#missing + 1] = i
  end
end
return missing
"""
)

HELD = (
    NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)

TRIM = """
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

RESERVE = (
    NOW_MS
    + TRIM
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

SETTLE = """
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

CHARGE = (
    NOW_MS
    + """
for i = 1, #KEYS / 2 do
  redis.call('ZADD', KEYS[2 * i - 1], now, ARGV[1] .. ':' .. ARGV[2])
  redis.call('INCRBY', KEYS[2 * i], tonumber(ARGV[2]))
end
return 0
"""
)
