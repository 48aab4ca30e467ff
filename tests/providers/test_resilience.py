"""RetryPolicy backoff, the CircuitBreaker state machine (injected clock) and call_with_retries."""

from __future__ import annotations

import random

import pytest

from shared.errors import ProviderRejected, ProviderUnavailable
from shared.providers.resilience import CircuitBreaker, CircuitOpenError, RetryPolicy, call_with_retries


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def unavailable(retry_after: float | None = None) -> ProviderUnavailable:
    return ProviderUnavailable("provider down", provider="test", retry_after=retry_after)


def scripted(*outcomes):
    """A callable that raises or returns each outcome in turn, and counts its calls."""
    remaining = list(outcomes)

    def fn():
        fn.calls += 1
        outcome = remaining.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    fn.calls = 0
    return fn


# --- RetryPolicy ---------------------------------------------------------------------------


@pytest.mark.parametrize("attempt, cap", [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)])
def test_delay_is_full_jitter_within_the_exponential_cap(attempt, cap):
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0)
    random.seed(attempt)
    delays = [policy.delay(attempt) for _ in range(2000)]
    assert all(0.0 <= d <= cap for d in delays)
    # Full jitter spreads over the whole range, so retries from many workers do not align.
    assert min(delays) < cap * 0.1 and max(delays) > cap * 0.9


def test_delay_honours_retry_after_up_to_the_maximum():
    policy = RetryPolicy(base_delay_s=0.01, max_delay_s=5.0)
    assert all(policy.delay(1, retry_after=2.0) >= 2.0 for _ in range(200))
    assert policy.delay(1, retry_after=60.0) == 5.0  # a worker is not parked for a minute


def test_delay_does_not_overflow_for_a_huge_attempt_number():
    assert 0.0 <= RetryPolicy(base_delay_s=0.25, max_delay_s=8.0).delay(5000) <= 8.0


# --- CircuitBreaker ------------------------------------------------------------------------


def test_breaker_stays_closed_below_the_threshold_and_a_success_resets_the_count():
    breaker = CircuitBreaker("p", failure_threshold=3, reset_timeout_s=10, clock=Clock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.CLOSED
    breaker.before_call()  # does not raise


def test_breaker_opens_at_the_threshold_and_fails_fast_with_the_remaining_wait():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=3, reset_timeout_s=10, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN
    clock.advance(4)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call()
    assert caught.value.retry_after == pytest.approx(6)
    assert isinstance(caught.value, ProviderUnavailable) and caught.value.retryable


def test_breaker_half_opens_after_the_timeout_and_lets_exactly_one_trial_through():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=1, reset_timeout_s=10, clock=clock)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.state == CircuitBreaker.HALF_OPEN
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # everyone else waits for its verdict


def test_a_successful_trial_closes_the_breaker():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=1, reset_timeout_s=10, clock=clock)
    breaker.record_failure()
    clock.advance(10)
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == CircuitBreaker.CLOSED
    breaker.before_call()
    breaker.before_call()


def test_a_failed_trial_reopens_the_breaker_for_a_full_timeout():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=1, reset_timeout_s=10, clock=clock)
    breaker.record_failure()
    clock.advance(10)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN
    clock.advance(9.9)
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.advance(0.1)
    assert breaker.state == CircuitBreaker.HALF_OPEN


# --- call_with_retries ---------------------------------------------------------------------


def test_retries_retryable_errors_then_returns_the_result():
    fn = scripted(unavailable(), unavailable(), "done")
    sleeps, retried = [], []
    result = call_with_retries(fn, policy=RetryPolicy(attempts=4, base_delay_s=0.01), sleep=sleeps.append,
                               on_retry=lambda attempt, exc: retried.append(attempt))
    assert result == "done" and fn.calls == 3
    assert retried == [1, 2] and len(sleeps) == 2


def test_gives_up_after_the_configured_attempts_with_the_last_error():
    last = unavailable()
    fn = scripted(unavailable(), unavailable(), last)
    with pytest.raises(ProviderUnavailable) as caught:
        call_with_retries(fn, policy=RetryPolicy(attempts=3, base_delay_s=0.01), sleep=lambda s: None)
    assert caught.value is last and fn.calls == 3


def test_non_retryable_errors_pass_straight_through_and_count_as_a_healthy_answer():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=2, reset_timeout_s=10, clock=clock)
    breaker.record_failure()
    fn = scripted(ProviderRejected("no", provider="test"))
    with pytest.raises(ProviderRejected):
        call_with_retries(fn, policy=RetryPolicy(attempts=4), breaker=breaker, sleep=lambda s: None)
    assert fn.calls == 1
    breaker.record_failure()  # the count was reset by the 4xx, so this one does not open it
    assert breaker.state == CircuitBreaker.CLOSED


def test_sleeps_at_least_retry_after():
    fn = scripted(unavailable(retry_after=0.5), "ok")
    sleeps = []
    call_with_retries(fn, policy=RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=2), sleep=sleeps.append)
    assert sleeps == [pytest.approx(0.5)]


def test_should_retry_can_veto_a_retry_which_still_counts_against_the_breaker():
    breaker = CircuitBreaker("p", failure_threshold=1, reset_timeout_s=10, clock=Clock())
    fn = scripted(unavailable(), "never reached")
    with pytest.raises(ProviderUnavailable):
        call_with_retries(fn, policy=RetryPolicy(attempts=4), breaker=breaker, sleep=lambda s: None,
                          should_retry=lambda exc: False)
    assert fn.calls == 1
    assert breaker.state == CircuitBreaker.OPEN


def test_an_open_breaker_stops_the_retries_without_calling_again():
    breaker = CircuitBreaker("p", failure_threshold=2, reset_timeout_s=10, clock=Clock())
    fn = scripted(unavailable(), unavailable(), "never reached")
    with pytest.raises(CircuitOpenError):
        call_with_retries(fn, policy=RetryPolicy(attempts=5), breaker=breaker, sleep=lambda s: None)
    assert fn.calls == 2


def test_an_unexpected_exception_in_the_half_open_trial_does_not_wedge_the_breaker():
    # Regression: the trial slot used to stay taken forever, so every later call was refused.
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=1, reset_timeout_s=10, clock=clock)
    breaker.record_failure()
    clock.advance(10)
    with pytest.raises(RuntimeError):
        call_with_retries(scripted(RuntimeError("bug in our parser")), policy=RetryPolicy(), breaker=breaker,
                          sleep=lambda s: None)
    assert call_with_retries(scripted("recovered"), policy=RetryPolicy(), breaker=breaker) == "recovered"
    assert breaker.state == CircuitBreaker.CLOSED
