"""Rate limits in Redis: a sliding-window log checked and updated by one atomic Lua script.

Algorithm. Each (limit, subject) pair is a sorted set holding the times of the hits it let
through in the current window. One script, run atomically by Redis, drops hits older than
the window, counts the rest and either records the new hit or refuses it. "5 per hour" then
means exactly that: never more than 5 in any 60 minutes, with no burst at a fixed window's
edge. A refusal tells exactly when the oldest hit leaves the window (the Retry-After), and
refused hits are not recorded, so the set never holds more than `limit` entries and a client
that keeps hammering does not push its own retry time further out. Memory is bounded by the
limit (at most 20 here), and the key expires with its window.

Time comes from Redis (`TIME`), never from the caller, so API processes and workers on
different machines agree on the clock.

After a clone succeeds the worker records the moment (`record_clone_success`); the upload
check refuses new samples for a cooldown measured from it. The duration is decided where it
is enforced (the API's settings), so the worker needs no setting that could disagree with it.

Failure policy when Redis cannot be reached (see `Policy.fail_open`): limits on authenticated,
Redis-dependent work (uploads, performs) fail open, because the broker is the same Redis and
enqueueing the job answers 503 anyway; limits that guard activation codes (registration) fail
closed with 503, as does the login throttle (shared/users/login_guard.py), because Redis being
down must not become a window for unthrottled guessing. Neither ever answers 500.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from dataclasses import dataclass

import redis

from shared.config import Settings
from shared.errors import RateLimited, ServiceUnavailable

log = logging.getLogger(__name__)

KEY_PREFIX = "rl:"
#: how long a clone-success mark is kept: the longest cooldown the settings accept
CLONE_MARK_TTL_S = 24 * 3600

_SPEC = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)([smh])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}

# KEYS[1] the window's sorted set (member: unique id, score: hit time in microseconds)
# KEYS[2] (only when ARGV[4] > 0) the cooldown mark: the time something succeeded, in µs
# ARGV: limit, window in µs, a unique member for this hit, cooldown in µs
# Returns {allowed (1|0), remaining, retry after in µs, refused by the cooldown (1|0)}.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, window, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
if cooldown > 0 then
  local mark = tonumber(redis.call('GET', KEYS[2]))
  if mark and mark + cooldown > now then
    return {0, 0, mark + cooldown - now, 1}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return {1, limit - used - 1, 0, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now, 0}
"""


@dataclass(frozen=True)
class Rate:
    limit: int
    window_s: int

    @classmethod
    def parse(cls, spec: str) -> Rate:
        """`"5/1h"` is five per hour; the window unit is s, m or h."""
        match = _SPEC.match(spec.strip())
        if not match:
            raise ValueError(f"rate {spec!r} is not <count>/<window><s|m|h>, e.g. 5/1h")
        count, amount, unit = match.groups()
        return cls(int(count), int(amount) * _UNIT_S[unit])


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after_s: int  # whole seconds, at least 1 when refused, 0 when allowed
    cooldown: bool = False  # refused because of the cooldown, not the count


@dataclass(frozen=True)
class Policy:
    name: str  # part of the Redis key
    setting: str  # the Settings field holding the rate spec
    fail_open: bool
    message: str


UPLOAD = Policy("upload", "rate_limit_upload", True, "Too many voice samples uploaded.")
PERFORM = Policy("perform", "rate_limit_perform", True, "Too many voice notes requested.")
REGISTER_IP = Policy("register-ip", "rate_limit_register_ip", False, "Too many registrations from this address.")


class RateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._script = client.register_script(_SCRIPT)

    def hit(self, name: str, subject: str, rate: Rate, *, cooldown_key: str | None = None,
            cooldown_s: float = 0) -> Decision:
        """Count one hit for `subject` under limit `name`, or refuse it. Raises RedisError
        when Redis cannot answer; the caller decides whether that opens or closes."""
        cooldown_us = int(cooldown_s * 1_000_000) if cooldown_key else 0
        keys = [_key(name, subject)] + ([cooldown_key] if cooldown_us > 0 else [])
        allowed, remaining, retry_us, cooldown = self._script(
            keys=keys, args=[rate.limit, rate.window_s * 1_000_000, uuid.uuid4().hex, cooldown_us])
        retry_after = 0 if allowed else max(1, math.ceil(int(retry_us) / 1_000_000))
        return Decision(bool(allowed), int(remaining), retry_after, bool(cooldown))

    def reset(self, name: str, subject: str) -> None:
        self.redis.delete(_key(name, subject))


def _key(name: str, subject: str) -> str:
    return f"{KEY_PREFIX}{name}:{subject}"


def _clone_mark_key(user_id: str) -> str:
    return f"{KEY_PREFIX}clone-succeeded:{user_id}"


def enforce(client: redis.Redis, settings: Settings, policy: Policy, subject: str, *,
            cooldown_key: str | None = None, cooldown_s: float = 0,
            cooldown_message: str = "") -> Decision | None:
    """Count a hit; raise RateLimited (429 + Retry-After) when over the limit. When Redis is
    unreachable: None if the policy fails open, ServiceUnavailable (503) if it fails closed."""
    rate = Rate.parse(getattr(settings, policy.setting))
    try:
        decision = RateLimiter(client).hit(policy.name, subject, rate, cooldown_key=cooldown_key,
                                           cooldown_s=cooldown_s)
    except redis.RedisError as exc:
        log.warning("rate limiter unavailable", extra={"limit": policy.name, "fail_open": policy.fail_open,
                                                       "error_type": type(exc).__name__})
        if policy.fail_open:
            return None
        raise ServiceUnavailable("This action is briefly unavailable: a backing service is unreachable.") from exc
    if not decision.allowed:
        message = cooldown_message if decision.cooldown and cooldown_message else policy.message
        raise RateLimited(f"{message} Retry in {decision.retry_after_s} s.",
                          headers={"Retry-After": str(decision.retry_after_s)})
    return decision


# ------------------------------------------------------------------ the limits, by use case


def check_upload(client: redis.Redis, settings: Settings, user_id: str) -> None:
    """Per-user sample uploads, plus the cooldown after the last successful clone."""
    enforce(client, settings, UPLOAD, user_id, cooldown_key=_clone_mark_key(user_id),
            cooldown_s=settings.upload_cooldown_s,
            cooldown_message="Your voice was just updated; wait before sending another sample.")


def check_perform(client: redis.Redis, settings: Settings, user_id: str) -> None:
    enforce(client, settings, PERFORM, user_id)


def check_register(client: redis.Redis, settings: Settings, ip: str) -> None:
    enforce(client, settings, REGISTER_IP, ip)


def record_clone_success(client: redis.Redis, user_id: str) -> None:
    """Mark (in Redis time) that a clone just succeeded; the API derives its cooldown from it.
    Best effort: a missing mark only means the next upload is not held back."""
    try:
        seconds, micros = client.time()
        client.set(_clone_mark_key(user_id), seconds * 1_000_000 + micros, ex=CLONE_MARK_TTL_S)
    except redis.RedisError:
        log.warning("could not record the clone cooldown mark", extra={"user_id": user_id})
