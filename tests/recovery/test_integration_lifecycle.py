"""Integrations are created, changed, rotated and deleted through audited services, from
the API and the admin; every delivery is signed per Standard Webhooks, verified here with
the `standardwebhooks` library, before and after a rotation."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from opsconsole.models import AuditEvent
from recovery import services
from recovery.models import Integration, RecoveryItem
from tests.helpers import action_post, error_of
from tests.recovery.factories import QueuedItemFactory
from tests.workers import deliver

URL = "/platform/integrations"


def create(client, httpserver, **extra):
    body = {
        "name": "partner",
        "endpoint_url": httpserver.url_for("/hooks/partner"),
        "event_types": ["booking.confirmed", "refund.succeeded"],
        **extra,
    }
    return client.post(URL, body, format="json")


def verified(secret: str, request) -> dict:
    """What the partner's own verification (the Standard Webhooks library) accepts."""
    return Webhook(secret).verify(request.get_data(), dict(request.headers))


@pytest.mark.django_db
def test_create_shows_the_secret_once_and_audits_no_secret(operator_client, httpserver):
    response = create(operator_client, httpserver, max_in_flight=4, rate_per_second=20)
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["signing_secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert (body["event_types"], body["max_in_flight"], body["rate_per_second"]) == (
        ["booking.confirmed", "refund.succeeded"],
        4,
        20,
    )
    again = operator_client.get(f"{URL}/{body['id']}").json()
    assert "signing_secret" not in again
    assert again["signing_secret_created_at"] is not None
    listed = operator_client.get(URL).json()["items"]
    assert all("signing_secret" not in item for item in listed)
    audit_row = AuditEvent.objects.get(event="platform.integration.created")
    assert secret not in str(audit_row.after_state)
    assert audit_row.actor == "operator"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_types": []}, "event_types"),
        ({"event_types": ["Booking Confirmed"]}, "event_types"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"rate_per_second": "fast"}, "rate_per_second"),
        ({"ordering_key_path": "a..b"}, "ordering_key_path"),
        ({"endpoint_url": "ftp://x"}, "endpoint_url"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(operator_client, integration, change, field):
    before = Integration.objects.get(pk=integration.pk).updated_at
    response = operator_client.patch(f"{URL}/{integration.pk}", change, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "INT-400-INVALID-PAYLOAD"
    assert field in str(error["details"])
    assert Integration.objects.get(pk=integration.pk).updated_at == before


@pytest.mark.django_db
def test_patch_changes_and_audits_and_viewers_change_nothing(
    operator_client, viewer_client, integration
):
    denied = viewer_client.patch(f"{URL}/{integration.pk}", {"rate_per_second": 5}, format="json")
    assert denied.status_code == 403
    response = operator_client.patch(
        f"{URL}/{integration.pk}",
        {"event_types": ["*"], "ordering_key_path": "booking_id", "reason": "partner asked"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["ordering_key_path"] == "booking_id"
    row = AuditEvent.objects.get(event="platform.integration.updated")
    assert (row.reason, row.after_state["ordering_key_path"]) == ("partner asked", "booking_id")


@pytest.mark.django_db
def test_deliveries_are_signed_and_both_secrets_verify_for_24_hours_after_a_rotation(
    operator_client, httpserver
):
    created = create(operator_client, httpserver).json()
    old_secret = created["signing_secret"]
    integration = Integration.objects.get(pk=created["id"])
    httpserver.expect_request("/hooks/partner").respond_with_json({"ok": True})
    item = QueuedItemFactory(integration=integration, payload={"booking_id": 7, "name": "Zoë"})

    deliver()
    first, _ = httpserver.log[-1]
    assert verified(old_secret, first) == {"booking_id": 7, "name": "Zoë"}
    assert first.headers["webhook-id"] == item.webhook_id

    rotated = operator_client.post(
        f"{URL}/{integration.pk}/rotate-secret", {"reason": "leaked"}, format="json"
    )
    assert rotated.status_code == 200, rotated.content
    new_secret = rotated.json()["signing_secret"]
    assert new_secret != old_secret

    second_item = QueuedItemFactory(integration=integration, payload={"booking_id": 8})
    deliver()
    second, _ = httpserver.log[-1]
    assert len(second.headers["webhook-signature"].split(" ")) == 2
    assert verified(new_secret, second) == {"booking_id": 8}
    assert verified(old_secret, second) == {"booking_id": 8}  # the grace period
    assert second.headers["webhook-id"] == second_item.webhook_id

    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        QueuedItemFactory(integration=integration, payload={"booking_id": 9})
        deliver()
        third, _ = httpserver.log[-1]
        assert verified(new_secret, third) == {"booking_id": 9}
        with pytest.raises(WebhookVerificationError):
            verified(old_secret, third)
    row = AuditEvent.objects.get(event="platform.integration.secret_rotated")
    assert new_secret not in str(row.after_state) and old_secret not in str(row.before_state)


@pytest.mark.django_db
def test_the_webhook_id_is_stable_across_retries_and_replays(integration, httpserver, operator):
    httpserver.expect_oneshot_request("/hooks/crm").respond_with_data("down", status=503)
    item = QueuedItemFactory(integration=integration)
    RecoveryItem.objects.filter(pk=item.pk).update(max_attempts=1)
    deliver()
    item.refresh_from_db()
    assert item.status == RecoveryItem.Status.DLQ
    services.recovery_item_replay(
        integration_id=integration.pk, item_id=item.pk, actor=operator, reason="fixed"
    )
    httpserver.expect_oneshot_request("/hooks/crm").respond_with_json({"ok": True})
    deliver()
    ids = {request.headers["webhook-id"] for request, _ in httpserver.log}
    timestamps = [int(request.headers["webhook-timestamp"]) for request, _ in httpserver.log]
    assert ids == {item.webhook_id}
    assert all(abs(ts - timezone.now().timestamp()) < 60 for ts in timestamps)


@pytest.mark.django_db
def test_delete_is_refused_while_items_are_open_then_disables_and_keeps(
    operator_client, integration
):
    item = QueuedItemFactory(integration=integration)
    refused = operator_client.delete(f"{URL}/{integration.pk}", {"reason": "gone"}, format="json")
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "INT-409-INTEGRATION-HAS-ITEMS"
    assert Integration.objects.get(pk=integration.pk).enabled is True
    RecoveryItem.objects.filter(pk=item.pk).update(status=RecoveryItem.Status.SUCCEEDED)
    deleted = operator_client.delete(f"{URL}/{integration.pk}", {"reason": "gone"}, format="json")
    assert deleted.status_code == 200, deleted.content
    assert deleted.json()["enabled"] is False and deleted.json()["deleted_at"] is not None
    assert Integration.objects.filter(pk=integration.pk).exists()  # kept for the audit
    assert AuditEvent.objects.get(event="platform.integration.deleted").reason == "gone"


@pytest.mark.django_db
def test_the_admin_creates_rotates_and_deletes_through_the_services(admin_client, integration):
    changelist = "/admin/recovery/integration/"
    page = admin_client.get(changelist).content.decode()
    assert "Signing secret age" in page and "in flight" in page
    action_post(
        admin_client,
        changelist,
        "rotate_signing_secrets",
        [integration.pk],
        confirm="yes",
        reason="yearly",
    )
    messages = [str(m) for m in admin_client.get(changelist).context["messages"]]
    assert any("shown this once: whsec_" in message for message in messages)
    assert AuditEvent.objects.filter(event="platform.integration.secret_rotated").count() == 1
    action_post(
        admin_client,
        changelist,
        "delete_integrations",
        [integration.pk],
        confirm="yes",
        reason="partner left",
    )
    integration.refresh_from_db()
    assert (integration.enabled, integration.deleted_at is not None) == (False, True)
