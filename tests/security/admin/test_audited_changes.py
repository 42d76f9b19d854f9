"""Integrations, resources and worker switches change only through audited services."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from bookings.models import Resource
from opsconsole.models import AuditEvent
from recovery import services
from recovery.errors import IntegrationInvalidPayload
from recovery.models import DeliveryAttempt, Integration, RecoveryItem
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import QueuedItemFactory
from tests.workers import deliver


def audit_events(obj, event: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            object_type=f"{obj._meta.app_label}.{obj._meta.model_name}",
            object_id=str(obj.pk),
            event=event,
        )
    )


def history_version_url(integration: Integration) -> str:
    version = integration.history.order_by("history_id").first()
    return reverse(
        "admin:recovery_integration_simple_history", args=[integration.pk, version.history_id]
    )


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["Support viewer", "Support operator", "superuser"])
def test_it_refuses_a_history_revert_to_everyone(client, who):
    user = (
        UserFactory(username="u", superuser=True)
        if who == "superuser"
        else UserFactory(username="u", groups=[who])
    )
    user.is_staff = True
    user.save()
    erp = services.integration_create(
        name="erp", endpoint_url="https://erp.example.com/hooks", actor="t"
    )
    client.force_login(user)
    url = history_version_url(erp)
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {"name": "erp", "endpoint_url": "https://attacker.example.net/steal", "enabled": "on"},
    )
    assert response.status_code == 403
    erp.refresh_from_db()
    assert erp.endpoint_url == "https://erp.example.com/hooks"
    assert not audit_events(erp, "platform.integration.updated")


@pytest.mark.django_db
def test_it_saves_an_admin_edit_through_the_service_with_before_after_and_reason(admin_client):
    erp = services.integration_create(
        name="erp", endpoint_url="https://erp.example.com/hooks", actor="t"
    )
    url = reverse("admin:recovery_integration_change", args=[erp.pk])
    form = {
        "name": "erp",
        "endpoint_url": "https://erp.example.com/v2",
        "enabled": "on",
        "event_types": '["*"]',
        "max_in_flight": "10",
        "rate_per_second": "50",
        "ordering_key_path": "",
        "body_format": "payload",
    }
    without_reason = admin_client.post(url, form)
    assert without_reason.status_code == 200  # the form again, with its error
    erp.refresh_from_db()
    assert erp.endpoint_url == "https://erp.example.com/hooks"
    response = admin_client.post(url, {**form, "reason": "ERP moved to v2"})
    assert response.status_code == 302
    erp.refresh_from_db()
    assert erp.endpoint_url == "https://erp.example.com/v2"
    (event,) = audit_events(erp, "platform.integration.updated")
    assert event.before_state["endpoint_url"] == "https://erp.example.com/hooks"
    assert event.after_state["endpoint_url"] == "https://erp.example.com/v2"
    assert (event.actor, event.reason) == ("root", "ERP moved to v2")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://erp.example.com/hooks",
        "https://10.0.0.5/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://user:pw@erp.example.com/",
        "ftp://erp.example.com/",
    ],
)
def test_it_refuses_an_unsafe_endpoint_url_in_the_admin_and_the_service(admin_client, url):
    erp = services.integration_create(
        name="erp", endpoint_url="https://erp.example.com/hooks", actor="t"
    )
    change = reverse("admin:recovery_integration_change", args=[erp.pk])
    response = admin_client.post(
        change, {"name": "erp", "endpoint_url": url, "enabled": "on", "reason": "try"}
    )
    assert response.status_code == 200
    erp.refresh_from_db()
    assert erp.endpoint_url == "https://erp.example.com/hooks"
    with pytest.raises(IntegrationInvalidPayload) as refused:
        services.integration_update(
            integration_id=erp.pk, changes={"endpoint_url": url}, actor="t", reason="x"
        )
    assert refused.value.code == "INT-400-INVALID-PAYLOAD"
    assert "endpoint_url" in refused.value.details


@pytest.mark.django_db
def test_it_allows_plain_http_to_an_allowed_host_or_with_debug():
    services.integration_create(name="a", endpoint_url="http://127.0.0.1:9/x", actor="t")
    with override_settings(DEBUG=True, OUTBOUND_ALLOWED_HOSTS=[]):
        services.integration_create(name="b", endpoint_url="http://erp.example.com/x", actor="t")


@pytest.mark.django_db
def test_it_parks_a_delivery_whose_host_resolves_to_loopback_at_call_time(integration, httpserver):
    """The URL was saved while allowed; at call time `localhost` is not, and it resolves to
    127.0.0.1: nothing is sent and the item is parked, not retried."""
    item = QueuedItemFactory(integration=integration)
    with override_settings(OUTBOUND_ALLOWED_HOSTS=[]):
        deliver()
    item.refresh_from_db()
    assert httpserver.log == []
    assert item.failure_code == "ENDPOINT_NOT_ALLOWED"
    assert item.status in {RecoveryItem.Status.FAILED, RecoveryItem.Status.DLQ}
    assert item.next_retry_at is None
    assert "loopback" in DeliveryAttempt.objects.get(item=item).failure_detail


@pytest.mark.django_db
def test_it_saves_resources_through_the_service(admin_client):
    response = admin_client.post(
        reverse("admin:bookings_resource_add"),
        {"name": "Court 9", "active": "on", "reason": "new court opened"},
    )
    assert response.status_code == 302
    resource = Resource.objects.get(name="Court 9")
    (created,) = audit_events(resource, "booking.resource.created")
    assert created.reason == "new court opened"
    admin_client.post(
        reverse("admin:bookings_resource_change", args=[resource.pk]),
        {"name": "Court 9", "reason": "closed for repairs"},
    )
    resource.refresh_from_db()
    assert resource.active is False
    (updated,) = audit_events(resource, "booking.resource.updated")
    assert (updated.before_state, updated.after_state) == (
        {"name": "Court 9", "active": True, "price": None, "bookable_until": None},
        {"name": "Court 9", "active": False, "price": None, "bookable_until": None},
    )
    assert (
        admin_client.post(
            reverse("admin:bookings_resource_delete", args=[resource.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
