"""Auth attempts vs lockouts (docs/runbooks/incident-response.md)."""

from __future__ import annotations

import pytest

from tests.helpers import error_of
from tests.opsconsole.factories import UserFactory


@pytest.mark.django_db
def test_failed_logins_are_counted_and_the_account_locked_at_the_threshold(
    client, viewer_client, settings
):
    UserFactory(username="target-user").is_staff = True
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "target-user", "password": "wrong"})
    locked = client.post("/admin/login/", {"username": "target-user", "password": "pw-123456"})
    assert locked.status_code == 429  # even the right password is refused while locked
    attempts = viewer_client.get("/api/v1/auth/attempts").json()
    assert attempts["failed_last_minute"] >= settings.AXES_FAILURE_LIMIT
    assert attempts["top_usernames_last_hour"][0]["username"] == "target-user"
    lockout = viewer_client.get("/api/v1/auth/lockout").json()
    assert lockout["threshold"] == settings.AXES_FAILURE_LIMIT
    assert [a["username"] for a in lockout["locked_accounts"]] == ["target-user"]
    assert lockout["lockouts_last_minute"] >= 1


def lockouts_counted(client) -> float:
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").content.decode()
    (line,) = [line for line in body.splitlines() if line.startswith("opsconsole_auth_lockouts")]
    name, value = line.split()
    assert name == "opsconsole_auth_lockouts_total"
    return float(value)


@pytest.mark.django_db
def test_metrics_count_every_lockout_as_a_counter(client, settings):
    settings.METRICS_BEARER_TOKEN = "scrape-token"
    before = lockouts_counted(client)
    for username in ("first-target", "second-target"):
        UserFactory(username=username)
        for _ in range(settings.AXES_FAILURE_LIMIT + 1):
            client.post("/admin/login/", {"username": username, "password": "wrong"})
    assert lockouts_counted(client) >= before + 2


@pytest.mark.django_db
def test_auth_monitoring_needs_the_view_permission(outsider_client, anonymous_client):
    assert outsider_client.get("/api/v1/auth/lockout").status_code == 403
    response = anonymous_client.get("/api/v1/auth/attempts")
    assert (response.status_code, error_of(response)["code"]) == (401, "OPS-401-UNAUTHENTICATED")
