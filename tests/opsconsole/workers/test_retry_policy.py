from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.failures.retry import RetryPolicy, parse_retry_after

policy = RetryPolicy(base_seconds=30, cap_seconds=3600, rng=random.Random(7))


@pytest.mark.smoke
@given(attempt=st.integers(min_value=1, max_value=60))
def test_full_jitter_stays_between_zero_and_the_capped_exponential(attempt):
    delay = policy.backoff_seconds(attempt)
    assert 0 <= delay <= min(3600, 30 * 2 ** (attempt - 1))


def test_backoff_spreads_out_instead_of_synchronising_retries():
    delays = {round(policy.backoff_seconds(6), 3) for _ in range(50)}
    assert len(delays) > 40


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_it_retries_408_429_and_5xx(status):
    assert policy.is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 409, 422])
def test_it_does_not_retry_other_statuses(status):
    assert not policy.is_retryable_status(status)


def test_retry_after_wins_over_backoff_but_is_bounded():
    assert policy.delay_seconds(1, retry_after=120) == 120
    assert policy.delay_seconds(1, retry_after=10**9) == policy.max_retry_after_seconds


def test_it_parses_both_retry_after_forms():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("90") == 90
    http_date = format_datetime(now + timedelta(seconds=45), usegmt=True)
    assert parse_retry_after(http_date, now=now) == 45
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_exhaustion_follows_max_attempts():
    assert not policy.exhausted(4, 5)
    assert policy.exhausted(5, 5)


def test_refunds_wait_five_minutes_then_back_off_from_a_minute_for_three_retries():
    """docs/runbooks/bookings-payments-notifications.md: delay 5 minutes, then exponential from
    60 s; 3 retries after the attempt."""
    from payments.refunds import refund_retry_policy

    policy = refund_retry_policy()
    for attempt, delay in ((1, 300), (2, 60), (3, 120)):
        waits = [policy.backoff_seconds(attempt) for _ in range(200)]
        assert delay <= min(waits) and max(waits) <= delay * 1.1, (attempt, min(waits))
    assert not policy.exhausted(3) and policy.exhausted(4)


def test_notifications_never_retry_sooner_than_a_minute():
    from notifications.services import notification_retry_policy

    policy = notification_retry_policy()
    assert min(policy.backoff_seconds(1) for _ in range(200)) >= 60
    assert min(policy.backoff_seconds(3) for _ in range(200)) >= 240
    assert policy.exhausted(5) and not policy.exhausted(4)
