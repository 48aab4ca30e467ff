"""The pool's recency order and in-use leases, in Redis, changed only through atomic scripts.

- `nv:pool:lru`            sorted set voice_id -> last use (epoch seconds); the eviction order.
- `nv:pool:leases:<voice>` sorted set job_id -> lease expiry; a voice with a live lease is in
                           use by a synthesis and is never evicted. Leases expire by themselves,
                           so a crashed worker cannot pin a voice forever.
- `nv:pool:evicting:<v>`   tombstone while a voice is being evicted: it cannot be leased again.
- `nv:pool:built`          marker that the LRU reflects MongoDB; absent after a flush, which
                           triggers a rebuild from the voice records.
"""

from __future__ import annotations

import time

import redis

LRU = "nv:pool:lru"
BUILT = "nv:pool:built"
STATS = "nv:pool:stats"
LEASES = "nv:pool:leases:"
EVICTING = "nv:pool:evicting:"

# Touch a voice (make it most recent) and lease it to a job, unless it is being evicted.
# KEYS: lru, leases:<voice>, evicting:<voice>; ARGV: voice, job, now, lease_expiry
_LEASE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('EXPIREAT', KEYS[2], math.ceil(tonumber(ARGV[4])) + 60)
return 1
"""

# Pick the least recently used voice without a live lease (and last used no later than
# max_score), take it out of the order and leave a tombstone; returns the voice id or false.
# KEYS: lru; ARGV: now, lease prefix, tombstone prefix, tombstone ttl, exclude, max_score
_PICK_VICTIM = """
local voices = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[6])
for _, voice in ipairs(voices) do
  if voice ~= ARGV[5] then
    local leases = ARGV[2] .. voice
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', ARGV[1])
    if redis.call('ZCARD', leases) == 0 and redis.call('EXISTS', ARGV[3] .. voice) == 0 then
      redis.call('ZREM', KEYS[1], voice)
      redis.call('SET', ARGV[3] .. voice, '1', 'EX', ARGV[4])
      return voice
    end
  end
end
return false
"""


class PoolOrder:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self._lease = r.register_script(_LEASE)
        self._pick = r.register_script(_PICK_VICTIM)

    def lease(self, voice_id: str, job_id: str, ttl_s: float) -> bool:
        now = time.time()
        return bool(self._lease(keys=[LRU, LEASES + voice_id, EVICTING + voice_id],
                                args=[voice_id, job_id, now, now + ttl_s]))

    def release(self, voice_id: str, job_id: str) -> None:
        self.r.zrem(LEASES + voice_id, job_id)

    def in_use(self, voice_id: str) -> int:
        key = LEASES + voice_id
        self.r.zremrangebyscore(key, "-inf", time.time())
        return int(self.r.zcard(key))

    def add(self, voice_id: str, last_used: float | None = None) -> None:
        self.r.zadd(LRU, {voice_id: last_used or time.time()})

    def remove(self, voice_id: str) -> None:
        self.r.zrem(LRU, voice_id)

    def pick_victim(self, tombstone_ttl_s: int = 300, exclude: str = "",
                    used_before: float | None = None) -> str | None:
        max_score = "+inf" if used_before is None else repr(used_before)
        voice = self._pick(keys=[LRU], args=[time.time(), LEASES, EVICTING, tombstone_ttl_s, exclude, max_score])
        return voice or None

    def clear_tombstone(self, voice_id: str) -> None:
        self.r.delete(EVICTING + voice_id)

    def order(self) -> list[tuple[str, float]]:
        return [(v, float(s)) for v, s in self.r.zrange(LRU, 0, -1, withscores=True)]

    def is_built(self) -> bool:
        return bool(self.r.exists(BUILT))

    def rebuild(self, entries: list[tuple[str, float]]) -> None:
        """Replace the order with `entries` (voice, last use) from the durable records."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(LRU)
        if entries:
            pipe.zadd(LRU, dict(entries))
        pipe.set(BUILT, "1")
        pipe.execute()

    def count(self, stat: str, n: int = 1) -> None:
        self.r.hincrby(STATS, stat, n)

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.r.hgetall(STATS).items()}
