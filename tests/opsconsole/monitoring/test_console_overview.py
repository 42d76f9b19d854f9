"""The console overview: queues, oldest stuck item, workers, recent actions."""

from __future__ import annotations

import pytest

from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import ParkedItemFactory


@pytest.mark.django_db
def test_the_console_overview_shows_queues_oldest_stuck_workers_and_actions(admin_client):
    from recovery import services

    integration = services.integration_create(name="erp", endpoint_url="https://x.test", actor="t")
    old = ParkedItemFactory(integration=integration, status="dlq")
    ParkedItemFactory(integration=integration, status="dlq")
    services.integration_set_paused(
        integration_id=integration.pk,
        paused=True,
        actor=UserFactory(username="someone", superuser=True),
        reason="INC-9",
    )
    page = admin_client.get("/admin/overview/")
    assert page.status_code == 200
    html = page.content.decode()
    queue = next(q for q in page.context["queues"] if q["name"] == "integration_deliveries")
    assert dict(queue["counts"])["dlq"] == 2
    assert queue["oldest_stuck"].pk == old.pk
    assert f"/admin/recovery/recoveryitem/{old.pk}/change/" in html
    assert "integration_delivery_worker" in html
    assert "platform.integration.paused" in html and "INC-9" in html


@pytest.mark.django_db
def test_the_overview_is_refused_to_staff_without_the_view_permission(client):
    staff = UserFactory(username="plain-staff")
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    assert client.get("/admin/overview/").status_code == 403
