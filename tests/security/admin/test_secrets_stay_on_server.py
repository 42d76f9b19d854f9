"""Secrets leave the server once, in the answer that creates them: no admin page, history
page, idempotency record or audit row holds a signing secret, a station key or an API
token's key afterwards."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from knox.models import AuthToken

from opsconsole.models import AuditEvent, IdempotencyKey
from payments import stations
from recovery import services
from tests.security.test_authorization_matrix import admin_urls


@pytest.fixture
def planted_secrets(world) -> list[str]:
    """A signing secret before and after a rotation, a station key and an API token."""
    integration = services.integration_create(
        name="secret-keeper", endpoint_url="https://partner.example.com/hooks", actor="t"
    )
    first = integration.revealed_secret
    services.integration_update(
        integration_id=integration.pk,
        changes={"rate_per_second": 7},
        actor="t",
        reason="history with a secret",
    )
    rotated = services.integration_rotate_secret(
        integration_id=integration.pk, actor="t", reason="rotate"
    ).revealed_secret
    _, station_key = stations.station_credential_issue(
        station_id="porto-9", label="Porto", actor="t", reason="issue"
    )
    _, token_key = AuthToken.objects.create(world["operator"])
    return [first, rotated, station_key, token_key]


def every_history_version() -> list[str]:
    """Every version page of every audited record, not only the first one."""
    from django.contrib import admin

    urls = []
    for model, model_admin in admin.site._registry.items():
        history = getattr(model, "history", None)
        if history is None or not hasattr(model_admin, "history_form_view"):
            continue
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pk_name = model._meta.pk.attname
        for version in history.order_by("-history_id")[:50]:
            urls.append(f"{base}{getattr(version, pk_name)}/history/{version.history_id}/")
    return urls


@pytest.mark.django_db
def test_no_admin_page_shows_a_secret_even_to_a_superuser(world, planted_secrets):
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    pages = [url for _, url in admin_urls()] + every_history_version()
    from recovery.models import Integration

    keeper = Integration.objects.get(name="secret-keeper")
    pages += [
        f"/admin/recovery/integration/{keeper.pk}/change/",
        f"/admin/recovery/integration/{keeper.pk}/history/",
    ]
    read = 0
    for url in pages:
        response = client.get(url)
        assert response.status_code < 500, url
        html = response.content.decode()
        assert [s for s in planted_secrets if s in html] == [], url
        read += 1
    assert read > 100
    # The audit rows of those changes hold neither the secrets nor the key.
    audited = "".join(str((row.before_state, row.after_state)) for row in AuditEvent.objects.all())
    assert [s for s in planted_secrets if s in audited] == []


@pytest.mark.django_db
def test_a_replayed_rotation_does_not_show_the_secret_again(operator_client, integration):
    url = f"/platform/integrations/{integration.pk}/rotate-secret"
    first = operator_client.post(
        url, {"reason": "leaked"}, format="json", HTTP_IDEMPOTENCY_KEY="rotate-1"
    )
    assert first.status_code == 200, first.content
    secret = first.json()["signing_secret"]
    assert secret.startswith("whsec_")
    stored = IdempotencyKey.objects.get(key="rotate-1")
    assert secret not in str(stored.response_body)

    again = operator_client.post(
        url, {"reason": "leaked"}, format="json", HTTP_IDEMPOTENCY_KEY="rotate-1"
    )
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert secret not in again.content.decode()
    assert "shown once" in again.json()["signing_secret"]
    # The replay rotated nothing: the secret of the first answer still signs.
    integration.refresh_from_db()
    assert integration.active_secrets()[0] == secret


@pytest.mark.django_db
def test_a_secret_shown_by_the_admin_never_rides_a_cookie(integration):
    """The admin's one showing of a new secret is a message kept in the session, on the
    server: a cookie (signed, not encrypted) would carry it through proxies and HAR files."""
    from tests.helpers import action_post

    root = Client()
    root.force_login(User.objects.create_superuser("root", password="pw-123456"))
    done = action_post(
        root,
        "/admin/recovery/integration/",
        "rotate_signing_secrets",
        [integration.pk],
        confirm="yes",
        reason="leaked",
    )
    assert done.status_code == 302
    assert "messages" not in done.cookies
    integration.refresh_from_db()
    secret = integration.active_secrets()[0]
    shown = root.get(done["Location"]).content.decode()
    assert secret in shown  # shown once, on the next page
    assert secret not in root.get(done["Location"]).content.decode()
