"""Rate-limit counters: one upsert per hit, no hit lost between concurrent requests, a
sliding estimate across windows, and idle counters and expired tokens purged daily."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from opsconsole.access.rate_counters import rate_counters_purge, rate_hit
from opsconsole.models import RateCounter
from tests.helpers import run_concurrently, token_client


@pytest.mark.django_db(transaction=True)
def test_concurrent_hits_on_one_key_are_all_counted():
    """The cache's read-modify-write lost hits between processes; the upsert cannot."""

    def hammer(_: int) -> int:
        return max(rate_hit("user:racer", 60, now=1_000_020).hits for _ in range(25))

    highest = run_concurrently(hammer, 8)
    assert RateCounter.objects.get(key="user:racer").hits == 200
    assert max(highest) == 200


@pytest.mark.django_db
def test_the_previous_window_weighs_by_its_overlap_and_then_drops():
    start = 6_000_000  # a window boundary for 60-second windows
    for _ in range(10):
        rate_hit("user:slider", 60, now=start + 30)
    halfway = rate_hit("user:slider", 60, now=start + 60 + 30)
    assert (halfway.hits, halfway.previous_hits) == (1, 10)
    assert halfway.estimate == pytest.approx(10 * 0.5 + 1)
    assert not halfway.allowed(5) and halfway.allowed(6)
    # Within limit 5 once the old window's weight is (5 - 1) / 10: 60% of the way through.
    assert halfway.wait_seconds(5) == 6
    two_windows_on = rate_hit("user:slider", 60, now=start + 180 + 1)
    assert (two_windows_on.hits, two_windows_on.previous_hits) == (1, 0)


@pytest.mark.django_db
def test_idle_counters_and_expired_tokens_are_purged(viewer):
    from knox.models import AuthToken

    from opsconsole.access.api_tokens import api_token_issue
    from opsconsole.access.authentication import expired_api_tokens_purge

    now = timezone.now().timestamp()
    rate_hit("anon:198.51.100.9", 60, now=now - 3 * 86_400)
    rate_hit("user:active", 60, now=now)
    assert rate_counters_purge() == 1
    assert list(RateCounter.objects.values_list("key", flat=True)) == ["user:active"]

    expired, _ = api_token_issue(user=viewer, actor="t", reason="old laptop", days=1)
    current, _ = api_token_issue(user=viewer, actor="t", reason="laptop", days=90)
    AuthToken.objects.filter(digest=expired.digest).update(
        expiry=timezone.now() - timedelta(minutes=1)
    )
    # Authenticating with one token no longer sweeps the user's others on every request.
    assert token_client(viewer).get("/api/v1/failures").status_code == 200
    assert AuthToken.objects.filter(digest=expired.digest).exists()
    assert expired_api_tokens_purge() == 1
    remaining = set(AuthToken.objects.values_list("digest", flat=True))
    assert expired.digest not in remaining and current.digest in remaining
