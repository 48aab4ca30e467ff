"""Retries with exponential backoff and full jitter (tenacity), and a per-provider circuit breaker.

Both are process-local: each worker process protects itself. The breaker opens after
`failure_threshold` consecutive failures, fails fast while open, and lets one trial call
through after `reset_timeout_s` (half-open); a success closes it again.

The breaker is ours, not a library's: see "Libraries we lean on and why" in
docs/ARCHITECTURE.md for what pybreaker, circuitbreaker and aiobreaker lack.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from shared.errors import ProviderError, ProviderUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # total tries, the first included
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter after the given 1-based failed attempt: uniform over [0, min(max,
        base * 2 ** (attempt - 1))], so retries from many workers do not align; at least the
        provider's Retry-After, but a worker is not parked for longer than the maximum."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        delay = wait_random_exponential(multiplier=self.base_delay_s, max=self.max_delay_s)(state)
        return delay if retry_after is None else max(delay, min(retry_after, self.max_delay_s))

    def wait(self, state: RetryCallState) -> float:
        """The tenacity wait strategy: `delay`, with the failed attempt's Retry-After."""
        failure = state.outcome.exception() if state.outcome is not None else None
        return self.delay(state.attempt_number, getattr(failure, "retry_after", None))


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

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` if the breaker lets it through, and judge the provider by its outcome.

        A retryable ProviderError is a failure. A non-retryable one (a 4xx the provider will
        repeat) counts as a healthy answer: the provider is up, it just said no. Anything else
        is not a provider answer (a bug in our code, KeyboardInterrupt): it judges nothing,
        but frees a half-open trial slot. The lock is not held while `fn` runs, so callers in
        other threads are not queued behind a slow provider."""
        self.before_call()
        try:
            result = fn()
        except ProviderError as exc:
            if exc.retryable:
                self.record_failure()
            else:
                self.record_success()
            raise
        except BaseException:
            self.release_trial()
            raise
        self.record_success()
        return result

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
    """Run `fn`; retry ProviderErrors marked retryable, each attempt judged by the breaker.

    Non-retryable ProviderErrors pass straight through (and, for the breaker, are a healthy
    answer). An open breaker ends the retries at once: its CircuitOpenError is not retried.

    `should_retry` lets a caller veto the retry of a retryable error (a non-idempotent call
    whose outcome is unknown): the error still counts as a failure for the breaker, and is
    raised at once."""

    def worth_retrying(exc: BaseException) -> bool:
        return (isinstance(exc, ProviderError) and exc.retryable and not isinstance(exc, CircuitOpenError)
                and (should_retry is None or should_retry(exc)))

    def report_retry(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            on_retry(state.attempt_number, state.outcome.exception())  # type: ignore[arg-type]

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=policy.wait,
        retry=retry_if_exception(worth_retrying),
        sleep=sleep,
        before_sleep=report_retry,
        reraise=True,  # the provider's own error, not tenacity's RetryError
    )
    return retrying(breaker.call, fn) if breaker is not None else retrying(fn)


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
