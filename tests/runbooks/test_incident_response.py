"""docs/runbooks/incident-response.md, walked in the browser: an incident opened from the
admin, noted while it runs, written up and resolved; and a worker switched off and on by
its kill switch, then run by hand."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from opsconsole.models import AuditEvent, Incident, WorkerStatus
from opsconsole.workers.switches import worker_enabled
from recovery.workers import DlqSweeper
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing
from tests.workers import run_queued_tasks, run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_incident_is_opened_noted_written_up_and_resolved(page, live_server):
    support_staff()
    walk = Walk(page, live_server.url, "incident-response")

    walk.log_in(OPERATOR)
    walk.link("Incidents")
    walk.link("Add incident")
    page.get_by_label("Title:").fill("Refunds failing at Stripe")
    page.get_by_label("Severity:").select_option(label="SEV2: a recovery path is down")
    page.get_by_label("Reason:").fill("refund_retry_worker failing since 14:02")
    walk.shot("add-incident")
    page.get_by_role("button", name="Save and continue editing").click()
    assert "was added successfully" in walk.message()
    incident = Incident.objects.get()
    walk.shot("incident-page")

    # A note needs no reason: it is the running record.
    # The first "New note" box; the second is the hidden template of "Add another".
    page.get_by_label("New note").first.fill("Stripe status page: degraded API")
    page.get_by_role("button", name="Save and continue editing").click()
    assert "was changed successfully" in walk.message()
    expect(page.get_by_text("Stripe status page: degraded API", exact=True)).to_be_visible()
    walk.shot("noted")

    walk.shot("resolve-not-offered-yet")
    expect(page.get_by_test_id("object-tool-resolve_incidents")).to_have_count(0)
    page.get_by_label("Summary:").fill("Refunds failed for 40 minutes; retried after.")
    page.get_by_label("Root cause:").fill("Stripe API degraded (their incident 1234).")
    page.get_by_label("Reason:").fill("Write-up for the retrospective")
    page.get_by_role("button", name="Save and continue editing").click()
    assert "was changed successfully" in walk.message()
    walk.shot("written-up")
    walk.tool("resolve_incidents")
    walk.shot("resolve-confirmation")
    assert "Resolve incidents: 1 row done." in walk.confirm("Refunds succeed again")
    walk.shot("resolved")
    # A resolved incident's page is its record: nothing left to save.
    expect(page.get_by_role("button", name="Save and continue editing")).to_have_count(0)

    incident.refresh_from_db()
    assert (incident.status, incident.resolved_by) == (Incident.Status.RESOLVED, OPERATOR)
    opened = AuditEvent.objects.get(event="platform.incident.opened")
    assert (opened.actor, opened.reason) == (OPERATOR, "refund_retry_worker failing since 14:02")
    noted = AuditEvent.objects.get(event="platform.incident.noted")
    assert noted.after_state == {"note": "Stripe status page: degraded API"}
    resolution = AuditEvent.objects.get(event="incident_resolution", object_id=str(incident.pk))
    assert (resolution.actor, resolution.reason) == (OPERATOR, "Refunds succeed again")
    assert resolution.after_state["root_cause"] == "Stripe API degraded (their incident 1234)."

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=["/admin/platform/incident/", f"/admin/platform/incident/{incident.pk}/change/"],
        refused=[
            "/admin/platform/incident/add/",
            f"/admin/platform/incident/{incident.pk}/act/resolve_incidents/",
        ],
    )
    # The viewer's page has no form fields to write in either.
    expect(page.get_by_role("button", name="Save")).to_have_count(0)


def test_a_worker_is_switched_off_and_on_and_run_now_from_its_page(page, live_server):
    support_staff()
    run_worker(DlqSweeper)  # its status row, as the schedule leaves it
    walk = Walk(page, live_server.url, "worker-kill-switch")
    worker_page = "/admin/platform/workerstatus/dlq_sweeper/change/"

    walk.log_in(OPERATOR)
    walk.link("Worker statuses")
    walk.link("dlq_sweeper")
    walk.shot("worker-page")
    walk.tool("disable_workers")
    walk.shot("disable-confirmation")
    assert "Disable workers: 1 row done." in walk.confirm("Sweeper retries a broken provider")
    expect(page.locator(".field-kill_switch")).to_contain_text("DISABLED by opal")
    expect(page.get_by_test_id("object-tool-run_workers_now")).to_have_count(0)
    walk.shot("disabled")
    assert not worker_enabled("dlq_sweeper")

    walk.tool("enable_workers")
    assert "Enable workers: 1 row done." in walk.confirm("Provider fixed")
    expect(page.locator(".field-kill_switch")).to_contain_text("enabled by opal")
    walk.shot("enabled")
    walk.tool("run_workers_now")
    walk.shot("run-now-confirmation")
    assert "Run workers now: 1 row done." in walk.confirm("Sweep now, not in 15 minutes")
    run_queued_tasks("opsconsole.workers.run")  # the task queue's run
    page.reload()
    expect(page.locator(".fieldBox.field-last_triggered_by")).to_contain_text("operator:opal")
    walk.shot("ran")

    assert WorkerStatus.objects.get(name="dlq_sweeper").last_triggered_by == "operator:opal"
    events = AuditEvent.objects.filter(object_id="dlq_sweeper").order_by("id")
    assert [(e.event, e.actor, e.reason) for e in events] == [
        ("platform.worker.disabled", OPERATOR, "Sweeper retries a broken provider"),
        ("platform.worker.enabled", OPERATOR, "Provider fixed"),
        ("platform.worker.run_requested", OPERATOR, "Sweep now, not in 15 minutes"),
    ]

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=["/admin/platform/workerstatus/", worker_page],
        refused=[
            f"/admin/platform/workerstatus/dlq_sweeper/act/{action}/"
            for action in ("disable_workers", "enable_workers", "run_workers_now")
        ],
    )
