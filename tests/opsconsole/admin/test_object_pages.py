"""A record's admin page leads to its audit trail, and a service-saved record's history is
that trail (every change with who, why, and the state before and after)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from recovery import services


@pytest.mark.django_db
def test_an_integrations_page_links_to_its_audit_events_and_its_history_is_that_trail():
    integration = services.integration_create(
        name="crm", endpoint_url="https://crm.example.com/hooks", actor="t", reason="set up"
    )
    services.integration_update(
        integration_id=integration.pk, changes={"rate_per_second": 9}, actor="t", reason="slower"
    )
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-123456"))
    page = client.get(f"/admin/recovery/integration/{integration.pk}/change/").content.decode()
    link = re.search(r'href="([^"]+)" data-testid="audit-trail-link"', page).group(1)
    trail = client.get(link.replace("&amp;", "&"))
    assert trail.status_code == 200
    shown = [row.event for row in trail.context["cl"].result_list]
    assert shown == ["platform.integration.updated", "platform.integration.created"]
    history = client.get(f"/admin/recovery/integration/{integration.pk}/history/", follow=True)
    assert [row.event for row in history.context["cl"].result_list] == shown


@pytest.mark.django_db
def test_a_dlq_item_is_replayed_from_its_own_page_with_a_reason(integration):
    from opsconsole.models import AuditEvent
    from recovery.models import RecoveryItem
    from tests.admin_forms.form_filler import filled, form_controls
    from tests.opsconsole.factories import UserFactory
    from tests.recovery.factories import ParkedItemFactory

    item = ParkedItemFactory(integration=integration, status="dlq")
    page_url = f"/admin/recovery/recoveryitem/{item.pk}/change/"
    viewer = Client()
    viewer.force_login(UserFactory(username="vera", groups=["Support viewer"], is_staff=True))
    assert "object-tool-" not in viewer.get(page_url).content.decode()
    assert (
        viewer.get(f"/admin/recovery/recoveryitem/{item.pk}/act/replay_items/").status_code == 403
    )

    operator = Client()
    operator.force_login(UserFactory(username="otto", groups=["Support operator"], is_staff=True))
    page = operator.get(page_url).content.decode()
    button = re.search(r'href="([^"]+)" data-testid="object-tool-replay_items">Replay…<', page)
    confirm = operator.get(button.group(1)).content.decode()
    assert "will be affected" in confirm
    controls = form_controls(confirm, "confirm-with-reason")
    data = filled(controls, {"reason": "partner fixed their endpoint"})
    done = operator.post(button.group(1), data, follow=True)
    assert done.redirect_chain[-1][0] == page_url
    assert [m.message for m in done.context["messages"]] == ["Replay items: 1 row done."]
    item.refresh_from_db()
    assert item.status == RecoveryItem.Status.REPLAYED
    event = AuditEvent.objects.get(event="platform.integration.recovery.replayed")
    assert (event.actor, event.reason) == ("otto", "partner fixed their endpoint")
    # Replayed, it is no longer eligible: the button is gone.
    assert "object-tool-replay_items" not in operator.get(page_url).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_workers_page_says_who_switched_it_off_and_runs_it_now():
    from opsconsole.models import AuditEvent, WorkerStatus
    from tests.admin_forms.form_filler import filled, form_controls
    from tests.opsconsole.factories import UserFactory
    from tests.workers import run_queued_tasks

    name = "dlq_sweeper"
    WorkerStatus.objects.get_or_create(name=name)
    operator = Client()
    operator.force_login(UserFactory(username="otto", groups=["Support operator"], is_staff=True))
    page_url = f"/admin/platform/workerstatus/{name}/change/"

    def press(label: str, reason: str) -> None:
        page = operator.get(page_url).content.decode()
        url = re.search(rf'href="([^"]+)" data-testid="object-tool-[a-z_]+">{label}<', page)
        confirm = operator.get(url.group(1)).content.decode()
        data = filled(form_controls(confirm, "confirm-with-reason"), {"reason": reason})
        assert operator.post(url.group(1), data).status_code == 302

    press("Disable \\(kill switch\\)…", "sweeps the partner's DLQ during their outage")
    page = operator.get(page_url).content.decode()
    assert "DISABLED by otto at " in page
    assert "sweeps the partner&#x27;s DLQ during their outage" in page
    assert "Run now…" not in page  # a disabled worker does not run

    press("Enable…", "partner is back")
    press("Run now…", "drain the DLQ before the 09:00 report")
    assert AuditEvent.objects.filter(event="platform.worker.run_requested", object_id=name).exists()
    [summary] = run_queued_tasks("opsconsole.workers.run")
    assert summary["worker"] == name
    status = WorkerStatus.objects.get(name=name)
    assert status.last_triggered_by == "operator:otto"


@pytest.mark.django_db
def test_a_failure_is_resolved_from_its_own_page_and_leaves_the_inbox(integration):
    from opsconsole.models import AuditEvent
    from recovery.inbox.groups import failure_groups
    from tests.admin_forms.form_filler import filled, form_controls
    from tests.opsconsole.factories import UserFactory
    from tests.recovery.factories import ParkedItemFactory

    item = ParkedItemFactory(integration=integration, status="dlq")
    operator = Client()
    operator.force_login(UserFactory(username="otto", groups=["Support operator"], is_staff=True))
    page_url = f"/admin/recovery/recoveryitem/{item.pk}/change/"
    page = operator.get(page_url).content.decode()
    url = re.search(
        r'href="([^"]+)" data-testid="object-tool-resolve_integration_delivery">Resolve…<', page
    ).group(1)
    confirm = operator.get(url).content.decode()
    data = filled(form_controls(confirm, "confirm-with-reason"), {"reason": "partner has it"})
    assert operator.post(url, data).status_code == 302
    assert not [g for g in failure_groups() if item.pk in g.source_ids()]
    assert AuditEvent.objects.filter(reason="partner has it", actor="otto").exists()
    assert "object-tool-resolve_integration_delivery" not in operator.get(page_url).content.decode()
