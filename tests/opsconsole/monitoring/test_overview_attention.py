"""The overview leads with what needs someone: counters equal to the database, failing
integrations behind their circuits, components that are not ready (and only those), open
alerts and incidents; ages read as people say them; charts fit the page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opsconsole.models import Alert
from opsconsole.monitoring.metrics import registered_queues
from opsconsole.templatetags.durations import human_age
from recovery.models import DeliveryRollup, RecoveryItem
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import IntegrationFactory, ParkedItemFactory

STUCK_FOR = timedelta(hours=3, minutes=12, seconds=30)


def content(page: str) -> str:
    """The overview itself, without the admin's header and icon sprites."""
    return page.split('data-testid="console-overview"')[1].split("</div>\n<script")[0]


def shown(page: str, testid: str) -> str:
    return re.search(rf'data-testid="{testid}"[^>]*>([^<]*)<', page).group(1)


@pytest.fixture
def world(db):
    """Two DLQ items and a failed one (stuck 3 h 12 min) on erp; crm's circuit open after
    failing retries, 42 retried and none succeeded in the last hour; an open alert and an
    open incident. The open circuit makes readyz's circuit_breakers degraded."""
    from opsconsole.incidents.records import incident_open
    from recovery.integrations.circuits import circuit_record

    erp, crm = IntegrationFactory(name="erp"), IntegrationFactory(name="crm")
    ParkedItemFactory.create_batch(2, integration=erp, status="dlq")
    oldest = ParkedItemFactory(integration=erp, status="failed")
    RecoveryItem.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - STUCK_FOR)
    with transaction.atomic():
        for _ in range(settings.CIRCUIT_FAILURE_THRESHOLD):
            circuit_record(integration_id=crm.pk, succeeded=False, retryable_failure=True)
    minute = timezone.now().replace(second=0, microsecond=0)
    DeliveryRollup.objects.create(integration=crm, minute=minute, retry_scheduled=30)
    DeliveryRollup.objects.create(
        integration=crm, minute=minute - timedelta(minutes=20), retry_scheduled=12
    )
    DeliveryRollup.objects.create(integration=erp, minute=minute, succeeded=9, dlq=2)
    Alert.objects.create(
        kind="refund-failed",
        severity="critical",
        object_type="payments.refund",
        object_id="7",
        message="Refund 7 failed at the provider",
    )
    incident = incident_open(
        title="CRM webhooks down", severity="sev2", actor=UserFactory(username="ines"), reason="t"
    )
    return {"oldest": oldest, "crm": crm, "incident": incident}


@pytest.mark.django_db
def test_the_counters_equal_the_database(admin_client, world):
    page = admin_client.get("/admin/").content.decode()
    queues = registered_queues().values()
    dead = sum(q.model._default_manager.filter(status__in=q.dead_statuses).count() for q in queues)
    stuck = sum(
        q.model._default_manager.filter(status__in=q.stuck_statuses).count() for q in queues
    )
    assert int(shown(page, "counter-dlq")) == dead == 2
    assert int(shown(page, "counter-stuck")) == stuck == 3
    # Failing now: crm's deliveries and the circuit_breakers component, both listed below.
    assert int(shown(page, "counter-failing-now")) == 2
    assert shown(page, "counter-oldest-stuck") == "3 h 12 min"
    assert f"/admin/recovery/recoveryitem/{world['oldest'].pk}/change/" in page
    assert "/admin/recovery/recoveryitem/?status__in=dlq" in page  # the DLQ, one click away
    # The counters come before anything else on the page.
    body = content(page)
    assert body.index("counter-failing-now") < body.index("<h2")


@pytest.mark.django_db
def test_an_integration_failing_behind_its_open_circuit_is_red_not_green(admin_client, world):
    from opsconsole.outbound.integration_status import integration_status

    page = admin_client.get("/admin/").content.decode()
    row = re.search(
        r'<li class="attention attention-(\w+)" data-testid="attention-integration-crm"'
        r".*?</li>",
        page,
        re.S,
    )
    assert row.group(1) == "error"
    assert "42 retried, 0 succeeded in the last hour" in row.group(0)
    assert "circuit open since" in row.group(0)
    assert f"/admin/recovery/integration/{world['crm'].pk}/change/" in row.group(0)
    assert 'data-testid="attention-integration-erp"' not in page  # erp delivers
    deliveries = next(
        i
        for i in integration_status(force=True)["integrations"]
        if i["name"] == "integration_deliveries"
    )
    assert deliveries["status"] == "red" and "crm" in deliveries["detail"]


@pytest.mark.django_db
def test_only_components_that_are_not_ready_are_attention_rows(admin_client, world):
    from opsconsole.monitoring.health import registered_components

    page = admin_client.get("/admin/").content.decode()
    rows = re.findall(r'data-testid="attention-component-([\w-]+)" data-level="(\w+)"', page)
    assert rows == [("circuit_breakers", "degraded")]
    assert 'class="attention attention-degraded" data-testid="attention-component-circuit_b' in page
    others = len(registered_components()) - 1
    assert shown(page, "components-ready") == f"All {others} other components ready."
    # Every component is still there for whoever opens the full table.
    assert page.index('data-testid="readiness-details"') > page.index("counter-failing-now")


@pytest.mark.django_db
def test_open_alerts_and_incidents_link_to_their_pages(admin_client, world):
    page = admin_client.get("/admin/").content.decode()
    alert = Alert.objects.get()
    assert f'href="/admin/platform/alert/{alert.pk}/change/"' in page
    assert f'href="/admin/platform/incident/{world["incident"].pk}/change/"' in page
    assert "CRM webhooks down" in page and "Refund 7 failed at the provider" in page


@pytest.mark.django_db
def test_a_healthy_console_says_so_in_one_line(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "attention-component" not in page and "attention-integration" not in page
    assert shown(page, "counter-failing-now") == "0"
    assert shown(page, "counter-oldest-stuck") == "none"
    assert re.fullmatch(r"All \d+ components ready\.", shown(page, "components-ready"))
    assert " old)" not in page


@pytest.mark.django_db
def test_ages_read_as_people_say_them(admin_client, world):
    assert human_age(None) == ""
    assert human_age(timedelta(seconds=45)) == "45 s"
    assert human_age(STUCK_FOR) == "3 h 12 min"
    assert human_age(timedelta(hours=3, seconds=5)) == "3 h"
    assert human_age(timedelta(days=2, hours=4, minutes=9)) == "2 d 4 h"
    page = admin_client.get("/admin/").content.decode()
    assert shown(page, "oldest-age-integration_deliveries") == "(3 h 12 min old)"
    # A queue with nothing stuck says nothing of an age.
    manual_review = re.search(r'data-testid="queue-manual_review".*?</tr>', page, re.S).group(0)
    assert "old)" not in manual_review


@pytest.mark.django_db
def test_every_chart_scales_to_the_page(admin_client, world):
    body = content(admin_client.get("/admin/").content.decode())
    svgs = re.findall(r"<svg[^>]*>", body)
    assert len(svgs) >= 3 + len(registered_queues())  # deliveries' three charts, sparklines
    for svg in svgs:
        assert re.search(r'viewBox="0 0 \d+ \d+"', svg), svg
        assert "width:100%" in svg or "flex:1 1 auto" in svg, svg
        assert not re.search(r'\swidth="', svg), svg  # no fixed width to overflow the page
    for limit in re.findall(r"max-width:(\d+)px", body):
        assert int(limit) <= 1200
