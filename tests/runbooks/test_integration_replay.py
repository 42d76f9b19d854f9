"""docs/runbooks/integration-retry-and-replay.md, walked in the browser: one DLQ item
replayed from its page, then a whole group from the failure inbox by a dry run and Start."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from opsconsole.models import AuditEvent
from recovery.models import BulkAction, RecoveryItem
from recovery.workers import BulkActionWorker
from tests.recovery.factories import IntegrationFactory, ParkedItemFactory
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing
from tests.workers import run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_dlq_item_is_replayed_from_its_page_and_a_group_by_a_dry_run(page, live_server):
    support_staff()
    erp = IntegrationFactory(name="erp")
    lone = ParkedItemFactory(integration=erp, failure_code="HTTP_503", failure_detail="HTTP 503")
    group = [
        ParkedItemFactory(integration=erp, failure_code="HTTP_429", failure_detail="HTTP 429")
        for _ in range(3)
    ]
    # Left alone: its group is still there for the viewer to read.
    kept = ParkedItemFactory(integration=erp, failure_code="HTTP_400", failure_detail="HTTP 400")
    walk = Walk(page, live_server.url, "integration-retry-and-replay")

    # One item: Failure inbox → its group → the item → Replay… → reason.
    walk.log_in(OPERATOR)
    walk.link("Failure inbox")
    expect(page.get_by_test_id("failure-group")).to_have_count(3)
    walk.shot("failure-inbox")
    walk.link("HTTP_503")
    expect(page.get_by_test_id("group-summary")).to_contain_text("1 open integration_delivery")
    walk.shot("group")
    walk.link(f"#{lone.pk}")
    expect(page.get_by_test_id("object-tool-replay_items")).to_have_text("Replay…")
    walk.shot("item-page")
    walk.tool("replay_items")
    expect(page.get_by_test_id("eligible-count")).to_have_text("1")
    walk.shot("replay-confirmation")
    assert "Replay items: 1 row done." in walk.confirm("ERP is back (INC-12)")
    walk.shot("replayed")

    lone.refresh_from_db()
    assert lone.status == RecoveryItem.Status.REPLAYED
    replayed = AuditEvent.objects.get(
        event="platform.integration.recovery.replayed", object_id=str(lone.pk)
    )
    assert (replayed.actor, replayed.reason) == (OPERATOR, "ERP is back (INC-12)")
    assert replayed.before_state["status"] == "dlq"
    assert replayed.after_state["status"] == "replayed"

    # The group: a dry run from its page, then Start on the bulk action's page.
    walk.link("Failure inbox")
    walk.link("HTTP_429")
    form = page.get_by_test_id("bulk-replay-form")
    form.get_by_label("Pace (items per second):").fill("20")
    form.get_by_label("Reason:").fill("ERP rate limit lifted")
    walk.shot("group-dry-run-form")
    form.get_by_role("button", name="Dry run a bulk replay of these 3 items").click()
    assert "3 items would be replayed, 0 items resolved" in walk.message()
    assert "press Start" in walk.message()
    walk.shot("dry-run")
    action = BulkAction.objects.get()
    assert action.status == BulkAction.Status.READY
    walk.tool("start")
    walk.shot("start-confirmation")
    assert "Start bulk actions: 1 row done." in walk.confirm("Dry run reviewed: 3 deliveries")
    expect(page.get_by_test_id("bulk-live")).to_have_attribute("data-status", "running")
    walk.shot("started")

    run_worker(BulkActionWorker, max_seconds=5)
    action.refresh_from_db()
    assert (action.status, action.replayed) == (BulkAction.Status.COMPLETED, 3)
    assert {item.status for item in RecoveryItem.objects.filter(pk__in=[i.pk for i in group])} == {
        RecoveryItem.Status.REPLAYED
    }
    started = AuditEvent.objects.get(event="recovery.bulk_action.start")
    assert (started.actor, started.reason) == (OPERATOR, "Dry run reviewed: 3 deliveries")
    # The open page sees it finish by itself, and then shows one status: the page is loaded
    # again, so no Pause… is left beside a finished line.
    expect(page.get_by_test_id("object-tool-pause")).to_be_visible()
    expect(page.get_by_test_id("bulk-live")).to_have_attribute(
        "data-status", "completed", timeout=20000
    )
    expect(page.get_by_test_id("object-tool-pause")).to_have_count(0, timeout=20000)
    walk.shot("completed")

    # A viewer reads the same pages and acts on nothing (the item's page offers neither
    # Replay… nor Edit the payload and replay…).
    item_page = f"/admin/recovery/recoveryitem/{lone.pk}/change/"
    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/failures/",
            f"/admin/failures/{kept.inbox_fingerprint()}/",
            item_page,
            f"/admin/recovery/bulkaction/{action.pk}/change/",
        ],
        refused=[
            f"/admin/recovery/recoveryitem/{group[0].pk}/act/replay_items/",
            f"/admin/recovery/bulkaction/{action.pk}/act/abort/",
            f"/admin/recovery/recoveryitem/{kept.pk}/edit-and-replay/",
        ],
    )
