"""Retries with exponential backoff and full jitter, and a per-provider circuit breaker.

Both are process-local: each worker process protects itself. The breaker opens after
`failure_threshold` consecutive failures, fails fast while open, and lets one trial call
through after `reset_timeout_s` (half-open); a success closes it again.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from shared.errors import ProviderError, ProviderUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # total tries, the first included
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full-jitter backoff for the given 1-based failed attempt; honours Retry-After."""
        # Bound the exponent: 2 ** 1100 as a float overflows, and the cap is reached long before.
        exponent = min(max(attempt - 1, 0), 62)
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** exponent))
        delay = random.uniform(0, cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay_s))
        return delay


class CircuitOpenError(ProviderUnavailable):
    pass


class CircuitBreaker:
    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, name: str, failure_threshold: int = 5, reset_timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout_s:
            return self.HALF_OPEN
        return self.OPEN

    def before_call(self) -> None:
        """Raise CircuitOpenError unless a call may go through now."""
        with self._lock:
            state = self._state_locked()
            if state == self.CLOSED:
                return
            if state == self.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return
            wait = max(0.0, self.reset_timeout_s - (self._clock() - (self._opened_at or 0)))
            raise CircuitOpenError(
                f"{self.name} is failing; calls are paused for {wait:.0f} s.",
                provider=self.name, retry_after=wait,
            )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_in_flight = False
            if self._opened_at is not None or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()

    def release_trial(self) -> None:
        """Give back the half-open trial slot without judging the provider.

        For a call that ended in something other than a provider answer (a bug in our own
        code, KeyboardInterrupt): without this the slot stays taken and the breaker rejects
        every call forever."""
        with self._lock:
            self._trial_in_flight = False


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, ProviderError], None] | None = None,
    should_retry: Callable[[ProviderError], bool] | None = None,
) -> T:
    """Run `fn`; retry ProviderErrors marked retryable, counting them against the breaker.

    Non-retryable ProviderErrors (a 4xx the provider will repeat) pass straight through and
    count as a healthy answer for the breaker: the provider is up, it just said no.

    `should_retry` lets a caller veto the retry of a retryable error (a non-idempotent call
    whose outcome is unknown): the error still counts as a failure for the breaker, and is
    raised at once."""
    attempt = 0
    while True:
        attempt += 1
        if breaker is not None:
            breaker.before_call()
        try:
            result = fn()
        except ProviderError as exc:
            if not exc.retryable:
                if breaker is not None:
                    breaker.record_success()
                raise
            if breaker is not None:
                breaker.record_failure()
            if attempt >= policy.attempts:
                raise
            if should_retry is not None and not should_retry(exc):
                raise
            if on_retry is not None:
                on_retry(attempt, exc)
            sleep(policy.delay(attempt, exc.retry_after))
            continue
        except BaseException:
            # Not a provider answer: do not judge the provider, but free a half-open trial slot.
            if breaker is not None:
                breaker.release_trial()
            raise
        if breaker is not None:
            breaker.record_success()
        return result


# ---------------------------------------------------------------- process-wide breakers

_breakers: dict[tuple[str, str], CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def shared_breaker(provider: str, endpoint: str = "", *, failure_threshold: int = 5,
                   reset_timeout_s: float = 30.0) -> CircuitBreaker:
    """The one breaker for `provider` (at `endpoint`) in this process, created on first use.

    Every adapter instance for the same provider shares it, so a worker stops calling a failing
    provider as a whole rather than per object. The thresholds of the first caller win."""
    key = (provider, endpoint.rstrip("/"))
    with _breakers_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = _breakers[key] = CircuitBreaker(provider, failure_threshold=failure_threshold,
                                                      reset_timeout_s=reset_timeout_s)
        return breaker


def reset_breakers() -> None:
    """Forget every shared breaker (tests; a forked child starts with fresh ones anyway)."""
    with _breakers_lock:
        _breakers.clear()


def _after_fork_in_child() -> None:
    # A prefork worker must not inherit the parent's breaker state, nor a lock that another
    # parent thread may have held at the instant of the fork.
    global _breakers_lock
    _breakers_lock = threading.Lock()
    _breakers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
