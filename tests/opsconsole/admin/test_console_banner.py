"""The admin banner that tells everyone about an incident."""

from __future__ import annotations

import pytest

from opsconsole.models import AuditEvent, ConsoleBanner
from opsconsole.monitoring.banner import banner_set
from tests.helpers import action_post
from tests.opsconsole.factories import UserFactory


@pytest.mark.django_db
def test_operators_set_the_banner_with_a_reason_and_everyone_sees_it(client, admin_client):
    operator = UserFactory(username="op-staff", groups=["Support operator"])
    operator.is_staff = True
    operator.save()
    client.force_login(operator)
    response = client.post(
        "/admin/platform/consolebanner/add/",
        {"message": "Stripe degraded: refunds delayed", "level": "critical", "reason": "INC-42"},
    )
    assert response.status_code == 302, response.content[:500]
    banner = ConsoleBanner.objects.get(active=True)
    assert banner.set_by == "op-staff"
    page = admin_client.get("/admin/").content.decode()
    assert 'data-testid="console-banner"' in page
    assert "Stripe degraded: refunds delayed" in page
    assert AuditEvent.objects.get(event="platform.banner.set").reason == "INC-42"
    banner_set(message="Recovered", level="info", actor="op", reason="resolved")
    assert ConsoleBanner.objects.filter(active=True).count() == 1
    action_post(
        admin_client,
        "/admin/platform/consolebanner/",
        "clear_banner",
        [ConsoleBanner.objects.get(active=True).pk],
        confirm="yes",
        reason="all clear",
    )
    assert not ConsoleBanner.objects.filter(active=True).exists()
    assert 'data-testid="console-banner"' not in admin_client.get("/admin/").content.decode()
