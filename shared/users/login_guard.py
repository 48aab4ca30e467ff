"""Throttling password guessing without handing an attacker a way to lock the owner out.

Every login attempt belongs to an account (the one the username *or* email names, so both
spellings share a count; an unknown login counts like an account of its own, so a refusal
does not tell which accounts exist) and to a client: the owner's own client, proven by a
device token the API issued at an earlier successful login, or else the client's address.

- Per account and client, consecutive failures are counted; past `RATE_LIMIT_LOGIN_USER`
  (count/first wait, e.g. 5/5m) that client must wait, and each further failure doubles the
  wait (up to `MAX_BACKOFF_S`). A success clears it. The count is taken before the password is
  checked (so concurrent guesses cannot slip past it) and so is the refusal: a waiting client's
  password is not even checked.
- Per account, attempts from clients without a device token are limited in a sliding window
  (`RATE_LIMIT_LOGIN_ACCOUNT`): guessing spread over many addresses stops there, while the
  owner's own client, which holds a device token, is never counted in it nor held back by it.
- Per address, attempts of clients without a device token are limited (`RATE_LIMIT_LOGIN_IP`),
  whatever account they name.

Redis decides, atomically (one script per attempt), on its own clock. When Redis cannot be
reached, login fails closed with 503: that must not become a window for unthrottled guessing.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import uuid
from dataclasses import dataclass

import redis

from shared.config import Settings
from shared.errors import RateLimited, ServiceUnavailable
from shared.ratelimit import Rate

log = logging.getLogger(__name__)

KEY_PREFIX = "rl:login:"
#: the longest a client is made to wait after repeated failures
MAX_BACKOFF_S = 3600
#: a client's failure count is forgotten this long after its last failure
FAILURES_TTL_S = 24 * 3600

# KEYS: 1 client failures (hash: n, last), 2 account window (zset), 3 address window (zset)
# ARGV: 1 client limit, 2 client first wait µs, 3 max wait µs, 4 account limit, 5 account window µs,
#       6 address limit, 7 address window µs, 8 member, 9 count unknown-client windows (1|0),
#       10 failures ttl s
# Returns {allowed (1|0), retry after µs}
_ATTEMPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local limit = tonumber(ARGV[1])
if n >= limit then
  local wait = math.min(tonumber(ARGV[2]) * (2 ^ (n - limit)), tonumber(ARGV[3]))
  if last + wait > now then return {0, last + wait - now} end
end
if ARGV[9] == '1' then
  for i, spec in ipairs({{KEYS[2], ARGV[4], ARGV[5]}, {KEYS[3], ARGV[6], ARGV[7]}}) do
    local key, cap, window = spec[1], tonumber(spec[2]), tonumber(spec[3])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= cap then
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      return {0, tonumber(oldest[2]) + window - now}
    end
  end
  for i, spec in ipairs({{KEYS[2], ARGV[5]}, {KEYS[3], ARGV[7]}}) do
    redis.call('ZADD', spec[1], now, ARGV[8])
    redis.call('PEXPIRE', spec[1], math.ceil(tonumber(spec[2]) / 1000))
  end
end
redis.call('HSET', KEYS[1], 'n', n + 1, 'last', now)
redis.call('EXPIRE', KEYS[1], ARGV[10])
return {1, 0}
"""


# KEYS: 1 client failures, 2 account window, 3 address window; ARGV: 1 this attempt's member,
# 2 the account's member prefix. The address's earlier attempts on this account were this
# client's (it has just proven the password), so they are forgiven too; the account window
# keeps everyone else's attempts, so a success never resets a guesser's budget.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local prefix = ARGV[2]
for _, member in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if string.sub(member, 1, #prefix) == prefix then redis.call('ZREM', KEYS[3], member) end
end
return 1
"""


def new_device_token() -> str:
    return secrets.token_urlsafe(24)


def device_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def account_key(account_id: str | None, login: str) -> str:
    if account_id:
        return account_id
    # no personal data in key names: an unknown login is keyed by a hash
    return "unknown-" + hashlib.sha256(login.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Attempt:
    account: str
    client: str  # "device:<hash>" or "ip:<address>"
    known_device: bool
    member: str  # this attempt's entry in the sliding windows

    def _keys(self, ip: str) -> list[str]:
        return [f"{KEY_PREFIX}fails:{self.account}:{self.client}", f"{KEY_PREFIX}account:{self.account}",
                f"{KEY_PREFIX}ip:{ip}"]


def begin(r: redis.Redis, settings: Settings, *, account: str, ip: str, known_device: str | None) -> Attempt:
    """Count the attempt, or refuse it (429 RATE_LIMITED with Retry-After) before any password
    is checked. `known_device`: the hash of a device token the account issued, if the client
    sent a valid one."""
    client = f"device:{known_device}" if known_device else f"ip:{ip}"
    attempt = Attempt(account, client, bool(known_device), f"{account}:{uuid.uuid4().hex}")
    first = Rate.parse(settings.rate_limit_login_user)
    per_account = Rate.parse(settings.rate_limit_login_account)
    per_ip = Rate.parse(settings.rate_limit_login_ip)
    try:
        allowed, retry_us = r.register_script(_ATTEMPT)(keys=attempt._keys(ip), args=[
            first.limit, first.window_s * 1_000_000, MAX_BACKOFF_S * 1_000_000,
            per_account.limit, per_account.window_s * 1_000_000, per_ip.limit, per_ip.window_s * 1_000_000,
            attempt.member, "0" if known_device else "1", FAILURES_TTL_S])
    except redis.RedisError as exc:
        log.warning("login throttle unavailable", extra={"error_type": type(exc).__name__})
        raise ServiceUnavailable("Logging in is briefly unavailable: a backing service is unreachable.") from exc
    if not allowed:
        wait = max(1, math.ceil(int(retry_us) / 1_000_000))
        raise RateLimited(f"Too many login attempts. Retry in {wait} s.",
                          action="Wait for the time in Retry-After, then check the username and password; "
                                 "logging in from a device you used before is not held back.",
                          headers={"Retry-After": str(wait)})
    return attempt


def succeeded(r: redis.Redis, attempt: Attempt, ip: str) -> None:
    """The password was right: the client's failures are forgiven, and so is this attempt in
    the account window and this address's attempts on this account in the address window (the
    windows count what could be guesses)."""
    try:
        r.register_script(_SUCCEEDED)(keys=attempt._keys(ip), args=[attempt.member, f"{attempt.account}:"])
    except redis.RedisError:
        log.warning("could not clear the login failure count")
