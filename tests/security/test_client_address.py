"""The client's address comes from one function that knows the trusted proxies (#33):
behind the load balancer every client shares its address, so lockouts, rate limits and
monitoring access must key on the client, and a forged X-Forwarded-For from anyone else
must change nothing."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient

from opsconsole.http.client_address import client_ip
from tests.helpers import token_client
from tests.opsconsole.factories import PASSWORD, UserFactory

BALANCER = "10.0.0.2"
CLIENT_A = "203.0.113.10"
CLIENT_B = "198.51.100.20"
FAILURES = "/api/v1/failures"
behind_the_balancer = override_settings(TRUSTED_PROXIES=["10.0.0.0/24"])


def forwarded(client: str, peer: str = BALANCER) -> dict[str, str]:
    return {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": client}


@pytest.mark.parametrize(
    ("trusted", "meta", "expected"),
    [
        ([], forwarded(CLIENT_A), BALANCER),  # no trusted proxy: the header is ignored
        (["10.0.0.0/24"], forwarded(CLIENT_A), CLIENT_A),
        # A client's own X-Forwarded-For is left of what the balancer appended.
        (["10.0.0.0/24"], forwarded(f"127.0.0.1, {CLIENT_B}, {CLIENT_A}"), CLIENT_A),
        # Two trusted hops: both skipped.
        (["10.0.0.0/24"], forwarded(f"{CLIENT_A}, 10.0.0.9"), CLIENT_A),
        # An untrusted peer's header is ignored, whatever it says.
        (["10.0.0.0/24"], forwarded(CLIENT_B, peer=CLIENT_A), CLIENT_A),
        (["10.0.0.0/24"], forwarded("", peer=BALANCER), BALANCER),
        (["10.0.0.0/24"], forwarded("not-an-address", peer=BALANCER), BALANCER),
        (["10.0.0.0/24"], forwarded(f"{CLIENT_A}, junk", peer=BALANCER), BALANCER),
        (["fd00::/8"], forwarded("2001:db8::7", peer="fd00::1"), "2001:db8::7"),
        (["10.0.0.0/24"], forwarded(f"::ffff:{CLIENT_A}"), CLIENT_A),
    ],
)
def test_client_ip_walks_forwarded_for_from_the_right_past_trusted_proxies(trusted, meta, expected):
    with override_settings(TRUSTED_PROXIES=trusted):
        assert client_ip(RequestFactory().get("/", **meta)) == expected


def five_bad_passwords(client, username: str, **meta: str) -> None:
    for _ in range(5):
        client.post("/admin/login/", {"username": username, "password": "wrong"}, **meta)


def signs_in(client, username: str, **meta: str) -> bool:
    response = client.post("/admin/login/", {"username": username, "password": PASSWORD}, **meta)
    return response.status_code == 302


@pytest.mark.django_db
@behind_the_balancer
def test_bad_passwords_from_one_client_do_not_lock_out_another_behind_the_balancer(client):
    operator = UserFactory(username="operator", groups=["Support operator"], is_staff=True)
    five_bad_passwords(client, "operator", **forwarded(CLIENT_A))
    # The API token of the same account: refused from A (its lockout), taken from B.
    api = token_client(operator)
    assert api.get(FAILURES, **forwarded(CLIENT_A)).status_code == 401
    assert api.get(FAILURES, **forwarded(CLIENT_B)).status_code == 200
    assert signs_in(client, "operator", **forwarded(CLIENT_B))
    assert not signs_in(client, "operator", **forwarded(CLIENT_A))


@pytest.mark.django_db
@behind_the_balancer
def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(client):
    UserFactory(username="operator", groups=["Support operator"], is_staff=True)
    # The attacker, not behind the balancer, claims to be B: the lockout is the attacker's.
    five_bad_passwords(client, "operator", **forwarded(CLIENT_B, peer=CLIENT_A))
    assert signs_in(client, "operator", **forwarded(CLIENT_B))
    assert not signs_in(client, "operator", REMOTE_ADDR=CLIENT_A)


@pytest.mark.django_db
@behind_the_balancer
def test_anonymous_rate_limits_count_per_client_behind_the_balancer(settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "anon": "5/min"}
    a, b = APIClient(**forwarded(CLIENT_A)), APIClient(**forwarded(CLIENT_B))
    assert [a.get(FAILURES).status_code for _ in range(6)] == [401] * 5 + [429]
    assert b.get(FAILURES).status_code == 401
    # A caller that is not the balancer cannot buy a fresh budget with a new header each time.
    rotating = [
        APIClient(**forwarded(f"192.0.2.{n}", peer=CLIENT_B)).get(FAILURES).status_code
        for n in range(6)
    ]
    assert rotating[-1] == 429


@pytest.mark.django_db
@behind_the_balancer
def test_metrics_access_is_judged_on_the_client_not_the_balancer(settings):
    settings.METRICS_BEARER_TOKEN = ""
    settings.METRICS_ALLOWED_CIDRS = ["10.0.0.0/24"]  # the balancer's network, by mistake
    assert APIClient(**forwarded(CLIENT_A)).get("/metrics").status_code == 401
    settings.METRICS_ALLOWED_CIDRS = ["192.0.2.0/24"]  # the scraper's network
    assert APIClient(**forwarded("192.0.2.9")).get("/metrics").status_code == 200
    forged = forwarded("192.0.2.9", peer=CLIENT_A)
    assert APIClient(**forged).get("/metrics").status_code == 401
