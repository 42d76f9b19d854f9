"""Rate limits (DRF throttling in the shared cache), failed-token throttling, lockouts per
user and address, expiring hashed tokens, and monitoring endpoints closed to strangers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from opsconsole.access.api_tokens import api_token_issue
from tests.helpers import error_of, station_client, token_client
from tests.opsconsole.factories import UserFactory

PRODUCTION_RATES = {
    "anon": "60/min",
    "user": "1200/min",
    "station_redeem": "30/min",
    "ingest": "1200/min",
    "campaign_create": "10/min",
}
FAILURES = "/api/v1/failures"


def test_the_rate_defaults_are_the_documented_ones():
    from django.conf import settings

    assert settings.API_THROTTLE_RATES == PRODUCTION_RATES
    assert settings.AUTH_TOKEN_FAILURE_LIMIT == 10
    assert settings.API_TOKEN_TTL_DAYS == 90


@pytest.mark.django_db
def test_a_bad_token_flood_gets_429_with_retry_after_and_others_are_unaffected(viewer):
    attacker = APIClient(REMOTE_ADDR="203.0.113.7")
    attacker.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    statuses = [attacker.get(FAILURES).status_code for _ in range(150)]
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}
    limited = attacker.get(FAILURES)
    assert (limited.status_code, error_of(limited)["code"]) == (429, "OPS-429-THROTTLED")
    assert int(limited["Retry-After"]) > 0
    # Another address with a good token is not locked out by the attacker.
    assert token_client(viewer).get(FAILURES).status_code == 200


@pytest.mark.django_db
def test_anonymous_callers_are_limited_per_address():
    with override_settings(API_THROTTLE_RATES=PRODUCTION_RATES):
        client = APIClient(REMOTE_ADDR="198.51.100.1")
        statuses = [client.get(FAILURES).status_code for _ in range(61)]
        assert statuses[:60] == [401] * 60
        assert statuses[60] == 429
        other = APIClient(REMOTE_ADDR="198.51.100.2")
        assert other.get(FAILURES).status_code == 401


@pytest.mark.django_db
def test_authenticated_callers_have_their_own_budget(viewer, operator):
    rates = {**PRODUCTION_RATES, "user": "5/min"}
    with override_settings(API_THROTTLE_RATES=rates):
        client = token_client(viewer)
        statuses = [client.get(FAILURES).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        assert int(client.get(FAILURES)["Retry-After"]) > 0
        assert token_client(operator).get(FAILURES).status_code == 200


@pytest.mark.django_db
def test_redemptions_are_limited_per_station_not_per_credential():
    with override_settings(API_THROTTLE_RATES=PRODUCTION_RATES):
        first, second = station_client("lisbon-1"), station_client("lisbon-1")
        statuses = [
            (first if n % 2 else second)
            .post("/api/station/redeem", {"code": f"NOPE{n}"}, format="json")
            .status_code
            for n in range(31)
        ]
        assert statuses[:30] == [404] * 30
        assert statuses[30] == 429
        assert (
            station_client("porto-1")
            .post("/api/station/redeem", {"code": "NOPE"}, format="json")
            .status_code
            == 404
        )


@pytest.mark.django_db
def test_an_expired_token_is_refused():
    user = UserFactory(username="client", groups=["Support viewer"])
    _, key = api_token_issue(user=user, actor="t", reason="t", days=90)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(FAILURES).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=91)):
        assert client.get(FAILURES).status_code == 401


@pytest.mark.django_db
def test_a_lockout_is_per_user_and_address_and_refuses_that_users_tokens(client, viewer):
    """Five bad passwords from one address lock that address out of that account only,
    and the account's tokens are refused from there while the lockout lasts."""
    for _ in range(5):
        client.post(
            "/admin/login/",
            {"username": "viewer", "password": "wrong"},
            REMOTE_ADDR="203.0.113.9",
        )
    api = token_client(viewer)
    assert api.get(FAILURES, REMOTE_ADDR="203.0.113.9").status_code == 401
    assert api.get(FAILURES, REMOTE_ADDR="192.0.2.44").status_code == 200
    # Another operator is not locked out by the same address's failures.
    other = UserFactory(username="other-operator", groups=["Support operator"])
    assert token_client(other).get(FAILURES, REMOTE_ADDR="203.0.113.9").status_code == 200


@pytest.mark.django_db
def test_metrics_are_closed_to_strangers_and_open_to_the_token_or_network(settings):
    settings.METRICS_BEARER_TOKEN = "scrape-secret"
    settings.METRICS_ALLOWED_CIDRS = ["10.20.0.0/16"]
    stranger = APIClient(REMOTE_ADDR="198.51.100.3")
    response = stranger.get("/metrics")
    assert response.status_code == 401
    assert error_of(response)["code"] == "OPS-401-UNAUTHENTICATED"
    wrong = stranger.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    right = stranger.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert right.status_code == 200 and b"smplat_catalog_scheduler" in right.content
    assert APIClient(REMOTE_ADDR="10.20.3.4").get("/metrics").status_code == 200


@pytest.mark.django_db
def test_anonymous_readyz_shows_statuses_only(client, monitoring_client):
    anonymous = APIClient().get("/api/v1/health/readyz").json()
    assert anonymous["components"]
    assert all(c["details"] == {} for c in anonymous["components"].values())
    detailed = monitoring_client.get("/api/v1/health/readyz").json()
    assert detailed["components"]["database"]["details"]
    staff = UserFactory(username="staffer", groups=["Support viewer"])
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    assert client.get("/api/v1/health/readyz").json()["components"]["database"]["details"]


@pytest.mark.django_db
def test_the_admin_lists_tokens_and_a_revoke_is_audited(admin_client, viewer):
    from knox.models import AuthToken

    from opsconsole.models import AuditEvent
    from tests.helpers import action_post

    token, key = api_token_issue(user=viewer, actor="t", reason="laptop")
    listing = admin_client.get("/admin/knox/authtoken/")
    assert listing.status_code == 200
    assert token.token_key in listing.content.decode()
    assert key not in listing.content.decode()
    action_post(
        admin_client,
        "/admin/knox/authtoken/",
        "revoke_tokens",
        [token.digest],
        confirm="yes",
        reason="laptop stolen",
    )
    assert not AuthToken.objects.filter(digest=token.digest).exists()
    revoked = AuditEvent.objects.get(event="platform.api_token.revoked")
    assert (revoked.reason, revoked.actor) == ("laptop stolen", "root")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(FAILURES).status_code == 401


@pytest.mark.django_db
def test_the_schema_names_each_credential(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    schemes = schema["components"]["securitySchemes"]
    assert {"apiToken", "stationCredential", "cookieAuth"} <= set(schemes)
    redeem = schema["paths"]["/api/station/redeem"]["post"]
    assert redeem["security"] == [{"stationCredential": []}]


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=["10.0.0.0/24"])
def test_a_station_key_flood_gets_429_with_retry_after_per_client_address():
    """Station keys are throttled as tokens are: failures only, per client address (behind
    the balancer, the client's), in one budget with failed tokens."""
    redeem = "/api/station/redeem"
    guesser = APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.8")
    guesser.credentials(HTTP_AUTHORIZATION="Station not-a-real-key")
    statuses = [guesser.post(redeem, {"code": "X"}, format="json").status_code for _ in range(40)]
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}
    limited = guesser.post(redeem, {"code": "X"}, format="json")
    assert error_of(limited)["code"].endswith("-429-THROTTLED")
    assert int(limited["Retry-After"]) > 0
    guesser.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert guesser.get(FAILURES).status_code == 429  # the same budget
    # Another client behind the same balancer, guessing nothing, is not throttled; nor is a
    # real station key from the guesser's own address (only failures are counted).
    other = APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.8")
    other.credentials(HTTP_AUTHORIZATION="Station another-wrong-key")
    assert other.post(redeem, {"code": "X"}, format="json").status_code == 401
    station = station_client("lisbon-1")
    same_address = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.8"}
    answer = station.post(redeem, {"code": "NOPE"}, format="json", **same_address)
    assert answer.status_code == 404
