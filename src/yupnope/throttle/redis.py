"""Keep the throttle's counters in Redis, shared by every worker and instance that uses it.

Each counter is a hash, ``<prefix>:<scope>:<key>``, with the fields count, window_start and
blocked_until, changed by one Lua script per step (atomic in Redis), and dropped by Redis once
its window and longest wait are over.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .counters import Count, Counters
from .policy import Backoff

T = TypeVar("T")

#: Seconds to wait for Redis to accept a connection, and then for each answer.
REDIS_TIMEOUT_SECONDS = 0.5

#: What an outage looks like to redis-py: no connection, no answer in time, or a server still
#: loading its data (BusyLoadingError is a ConnectionError).
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)

# Times are epoch seconds, written by Python and never by Lua, whose numbers print with 14
# digits only: a time read back must compare equal to the one written.

# ARGV: now, fresh_after, milliseconds to keep the key, then for a backoff the free failures
# and the wait-until times after free, free + 1 … failures, the last one for all beyond.
_HIT = """
local key = KEYS[1]
local start = redis.call('HGET', key, 'window_start')
local before = redis.call('HGET', key, 'count')
local blocked = redis.call('HGET', key, 'blocked_until')
local count = 1
if start and tonumber(start) > tonumber(ARGV[2]) then
  count = redis.call('HINCRBY', key, 'count', 1)
else
  redis.call('HSET', key, 'count', 1, 'window_start', ARGV[1])
end
redis.call('PEXPIRE', key, ARGV[3])
local set = false
if #ARGV > 4 and not (blocked and tonumber(blocked) > tonumber(ARGV[1])) then
  local beyond = count - tonumber(ARGV[4])
  if beyond >= 0 then
    set = ARGV[5 + math.min(beyond, #ARGV - 5)]
    redis.call('HSET', key, 'blocked_until', set)
  end
end
return {count, redis.call('HGET', key, 'window_start'), blocked, set, start, before}
"""

_REFUND = """
local count = tonumber(redis.call('HGET', KEYS[1], 'count'))
if count and count > 0 then
  redis.call('HINCRBY', KEYS[1], 'count', -1)
end
"""

_UNBLOCK = """
if redis.call('HGET', KEYS[1], 'blocked_until') == ARGV[1] then
  if ARGV[2] == '' then
    redis.call('HDEL', KEYS[1], 'blocked_until')
  else
    redis.call('HSET', KEYS[1], 'blocked_until', ARGV[2])
  end
end
"""

# Take one hit back as a rollback would: its wait, if still in force, gives way to the one before;
# one comes off the count; and when nobody else counted in the window the hit began, the window
# it replaced comes back, or the key goes if the hit made it.
# ARGV: window start after the hit, before it, count before it, wait it set, wait before it.
_UNDO = """
local key = KEYS[1]
local count = tonumber(redis.call('HGET', key, 'count'))
if not count then
  return
end
if ARGV[4] ~= '' and redis.call('HGET', key, 'blocked_until') == ARGV[4] then
  if ARGV[5] == '' then
    redis.call('HDEL', key, 'blocked_until')
  else
    redis.call('HSET', key, 'blocked_until', ARGV[5])
  end
end
if count > 0 then
  count = redis.call('HINCRBY', key, 'count', -1)
end
if count == 0 and ARGV[2] ~= ARGV[1] and redis.call('HGET', key, 'window_start') == ARGV[1] then
  if ARGV[2] ~= '' then
    redis.call('HSET', key, 'window_start', ARGV[2], 'count', ARGV[3])
  elseif redis.call('HEXISTS', key, 'blocked_until') == 0 then
    redis.call('DEL', key)
  end
end
"""


class RedisCounters:
    """Keep the counters in Redis hashes that expire once their window and longest wait are over.

    Every step is one Lua script, so concurrent workers never lose a count. Redis has no
    rollback across keys, so a transaction remembers its hits and takes each back by hand.
    """

    def __init__(self, client: redis.Redis, prefix: str, longest_wait: timedelta) -> None:
        self.client = client
        self.prefix = prefix
        self.longest_wait = longest_wait
        # register_script only hashes the source: nothing is sent before the first call, and
        # redis-py loads a script again by itself when a restarted Redis has forgotten it.
        self._hit, self._refund, self._unblock, self._undo = (
            client.register_script(source) for source in (_HIT, _REFUND, _UNBLOCK, _UNDO)
        )
        self._taken: list[list[str]] | None = None

    def key(self, scope: str, key: str) -> str:
        """Return the Redis key of a counter."""
        return f"{self.prefix}:{scope}:{key}"

    def hit(
        self,
        scope: str,
        key: str,
        now: datetime,
        fresh_after: datetime,
        backoff: Backoff | None = None,
    ) -> Count:
        name = self.key(scope, key)
        # The key outlives its window by the longest wait, since a wait set by the window's last
        # hit must still hold; after that it has nothing to say, and Redis drops it.
        keep = now - fresh_after + self.longest_wait
        args: list[str | int] = [
            _stamp(now),
            _stamp(fresh_after),
            max(int(keep.total_seconds() * 1000), 1),
        ]
        if backoff is not None:
            args += [backoff.free, *(_stamp(now + wait) for wait in backoff.waits())]
        count, start, blocked, set_, start_before, count_before = self._hit(keys=[name], args=args)
        if self._taken is not None:
            self._taken.append(
                [name, *map(_text, (start, start_before, count_before, set_, blocked))]
            )
        return Count(int(count), _time(start), None if blocked is None else _time(blocked))

    def refund(self, scope: str, key: str) -> None:
        self._refund(keys=[self.key(scope, key)])

    def unblock(self, scope: str, key: str, set_at: datetime, back_to: datetime | None) -> None:
        restored = "" if back_to is None else _stamp(back_to)
        self._unblock(keys=[self.key(scope, key)], args=[_stamp(set_at), restored])

    def clear(self, scope: str, key: str) -> int:
        return int(self.client.delete(self.key(scope, key)))

    def transaction(self, work: Callable[[Counters], T], join: bool = False) -> T:
        # Redis has no transaction to join: each step is atomic by itself.
        inside = copy.copy(self)
        inside._taken = []
        try:
            return work(inside)
        except BaseException:
            for name, *args in reversed(inside._taken):
                self._undo(keys=[name], args=args)
            raise


def redis_client(url: str) -> redis.Redis:
    """Return a client for ``url`` that connects at its first command, with short timeouts.

    Nothing connects before the first command, and redis-py's pool starts afresh in a forked
    process, so a client made before a server forks is safe. No retries: an outage should cost
    a request one short timeout, and the pool already replaces connections Redis closed.
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


def public_url(url: str) -> str:
    """Return ``url`` without its user name, password and query, fit for a log line."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _stamp(moment: datetime) -> str:
    # repr keeps every bit of the float, and a float of epoch seconds keeps every microsecond
    # of today's dates, so a time read back compares equal to the one written.
    return repr(moment.timestamp())


def _time(raw: Any) -> datetime:
    return datetime.fromtimestamp(float(raw), UTC)


def _text(raw: Any) -> str:
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else str(raw)
