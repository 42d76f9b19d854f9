"""docs/runbooks/campaign-dispatcher-stalls.md, walked in the browser: a running campaign
stalled because its dispatcher was switched off; the operator finds it from the overview's
alert and the Stalled at filter, reads the dispatcher's kill switch, stops the campaign,
switches the dispatcher on, starts the campaign again and runs the dispatcher now."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from notifications.campaigns import campaign_create, campaign_start
from notifications.models import Campaign, CampaignTarget
from notifications.workers import CampaignDispatcherWorker, CampaignStallDetector
from opsconsole.models import AuditEvent
from opsconsole.workers.switches import worker_enabled, worker_switch_set
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing
from tests.workers import run_queued_tasks, run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DISPATCHER = "campaign_dispatcher_worker"
PHONES = ["+351910000011", "+351910000012", "+351910000013"]


def test_a_stalled_campaign_is_stopped_and_started_again_from_its_page(page, live_server):
    support_staff()
    # Started ten minutes ago; its dispatcher was switched off since, so nothing moved and
    # the stall detector marked it (and raised its alert).
    with time_machine.travel(timezone.now() - timedelta(minutes=10)):
        campaign = campaign_create(name="Autumn leagues", template="leagues", phones=PHONES)
        campaign_start(campaign_id=campaign.pk, actor="marketing", reason="autumn leagues")
        worker_switch_set(
            name=DISPATCHER, enabled=False, actor="oncall:sam", reason="WABA token rotation"
        )
    run_worker(CampaignDispatcherWorker)  # the schedule's run, skipped by the switch
    assert run_worker(CampaignStallDetector).outcomes == {"stalled": 1}
    walk = Walk(page, live_server.url, "campaign-dispatcher-stalls")
    campaign_page = f"/admin/notifications/campaign/{campaign.pk}/change/"
    worker_page = f"/admin/platform/workerstatus/{DISPATCHER}/change/"

    # The overview's open alerts name the stall; the Campaigns list's filter finds it.
    walk.log_in(OPERATOR)
    walk.link("Console overview")
    expect(page.get_by_test_id("open-alerts")).to_contain_text("campaign-stalled")
    expect(page.get_by_test_id("open-alerts")).to_contain_text("Autumn leagues")
    walk.shot("overview-alert")
    walk.link("Campaigns")
    walk.link("Not empty")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    walk.shot("stalled-campaigns")
    walk.link("Autumn leagues", within=rows.first)
    # 1. Not an expected wait: no quiet hours, no Throttled until, the import complete.
    status = page.get_by_test_id("campaign-status")
    expect(status).to_have_text(
        "queue length 3; pending: 3, retry_scheduled: 0, sent: 0, failed: 0, invalid: 0; STALLED"
    )
    expect(page.get_by_test_id("campaign-import")).to_have_text("imported 3 of 3 (complete)")
    walk.shot("campaign-page")

    # 2. The dispatcher: its kill switch says who switched it off and why.
    walk.link("Worker statuses")
    walk.link(DISPATCHER)
    kill_switch = page.locator(".field-kill_switch")
    expect(kill_switch).to_contain_text("DISABLED by oncall:sam")
    expect(kill_switch).to_contain_text("WABA token rotation")
    walk.shot("dispatcher-disabled")

    # 3. Pause the campaign.
    walk.open(campaign_page)
    walk.tool("stop_campaigns")
    assert "Stop (pause) campaigns: 1 row done." in walk.confirm("Dispatcher off; stalled")
    walk.shot("stopped")

    # The rotation is done: the dispatcher back on.
    walk.open(worker_page)
    walk.tool("enable_workers")
    assert "Enable workers: 1 row done." in walk.confirm("Token rotated (CHG-88)")
    walk.shot("dispatcher-enabled")

    # 4. Start the campaign, then Run now… on the dispatcher's page.
    walk.open(campaign_page)
    walk.tool("start_campaigns")
    assert "Start campaigns: 1 row done." in walk.confirm("Dispatcher healthy again")
    expect(status).not_to_contain_text("STALLED")
    expect(page.locator(".fieldBox.field-stalled_at")).to_contain_text("-")
    walk.shot("started")
    walk.open(worker_page)
    walk.tool("run_workers_now")
    assert "Run workers now: 1 row done." in walk.confirm("Send now, not at the next minute")
    run_queued_tasks("opsconsole.workers.run")  # the task queue's run
    walk.open(campaign_page)
    expect(status).to_contain_text("queue length 0; pending: 0, retry_scheduled: 0, sent: 3")
    walk.shot("sent")

    campaign.refresh_from_db()
    assert (campaign.status, campaign.stalled_at) == (Campaign.Status.COMPLETED, None)
    assert set(campaign.targets.values_list("status", flat=True)) == {CampaignTarget.Status.SENT}
    assert worker_enabled(DISPATCHER)
    events = AuditEvent.objects.filter(object_id=str(campaign.pk)).order_by("id")
    assert [(e.event, e.actor, e.reason) for e in events][2:5] == [
        ("notifications.campaign.stalled", "worker:campaign_stall_detector", ""),
        ("notifications.campaign.stopped", OPERATOR, "Dispatcher off; stalled"),
        ("notifications.campaign.started", OPERATOR, "Dispatcher healthy again"),
    ]
    worker_events = AuditEvent.objects.filter(object_id=DISPATCHER, actor=OPERATOR).order_by("id")
    assert [(e.event, e.reason) for e in worker_events] == [
        ("platform.worker.enabled", "Token rotated (CHG-88)"),
        ("platform.worker.run_requested", "Send now, not at the next minute"),
    ]

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/notifications/campaign/?stalled_at__isnull=False",
            campaign_page,
            worker_page,
        ],
        refused=[
            f"/admin/notifications/campaign/{campaign.pk}/act/stop_campaigns/",
            f"/admin/notifications/campaign/{campaign.pk}/act/start_campaigns/",
            f"/admin/platform/workerstatus/{DISPATCHER}/act/enable_workers/",
            f"/admin/platform/workerstatus/{DISPATCHER}/act/run_workers_now/",
        ],
    )
