"""docs/runbooks/whatsapp-send-failures.md, walked in the browser: a campaign met a 429 and
a number WhatsApp refused for good; the operator stops it from its page, changes its quiet
hours and throttle with a reason, starts it again, and exports the invalid numbers."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from notifications.adapters import OutboundMessage, SendResult
from notifications.campaigns import campaign_create, campaign_start
from notifications.models import Campaign, CampaignTarget
from notifications.workers import CampaignDispatcherWorker
from opsconsole.models import AuditEvent
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing
from tests.workers import run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFUSED = "+351910000001"
PHONES = [REFUSED, "+351910000002", "+351910000003", "+351910000004", "912 not a number"]
RETRY_AFTER = 60


@dataclass
class OverloadedWhatsApp:
    """WhatsApp over its rate limit (429, Retry-After) that refuses one number for good."""

    channel: str = "whatsapp"
    provider: str = "sandbox"

    def send(self, message: OutboundMessage) -> SendResult:
        if message.to == REFUSED:
            return SendResult(
                ok=False,
                provider=self.provider,
                failure_code="http_400",
                failure_detail="Message failed to send",
                http_status=400,
                provider_error_code="131000",
            )
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code="http_429",
            failure_detail="Rate limit hit",
            http_status=429,
            retry_after_seconds=RETRY_AFTER,
            provider_error_code="130429",
        )


def quiet_window(now: datetime) -> tuple[str, str]:
    """Quiet hours in Lisbon that start three hours from now: the walk never sits in them."""
    local = now.astimezone(ZoneInfo("Europe/Lisbon"))
    return f"{(local + timedelta(hours=3)):%H}:00", f"{(local + timedelta(hours=5)):%H}:00"


def test_a_rate_limited_campaign_is_stopped_reset_and_started_from_its_page(page, live_server):
    support_staff()
    campaign = campaign_create(name="Spring promo", template="spring_promo", phones=PHONES)
    campaign_start(campaign_id=campaign.pk, actor="marketing", reason="spring promo")
    summary = run_worker(CampaignDispatcherWorker, adapter=OverloadedWhatsApp())
    assert (summary.outcomes["failed"], summary.outcomes["rate_limited"]) == (1, 1)
    quiet_start, quiet_end = quiet_window(timezone.now())
    walk = Walk(page, live_server.url, "whatsapp-send-failures")

    # 1. Stop sending: Campaigns → the campaign → Stop (pause) campaigns → reason.
    walk.log_in(OPERATOR)
    walk.link("Campaigns")
    walk.shot("campaigns")
    walk.link("Spring promo")
    status = page.get_by_test_id("campaign-status")
    expect(status).to_contain_text("queue length 4; pending: 3, retry_scheduled: 1")
    expect(status).to_contain_text("failed: 1")
    campaign.refresh_from_db()
    throttled = timezone.localtime(campaign.throttled_until)
    expect(page.locator(".fieldBox.field-throttled_until")).to_contain_text(f"{throttled:%Y-%m-%d}")
    walk.shot("campaign-page")
    walk.tool("stop_campaigns")
    walk.shot("stop-confirmation")
    assert "Stop (pause) campaigns: 1 row done." in walk.confirm("WhatsApp 429s (INC-21)")
    expect(page.locator(".field-status")).to_contain_text("Paused")
    walk.shot("stopped")

    # 2. The settings on the same page: a wrong value shows its error on the field, then
    # the throttle and quiet hours are saved with a reason.
    page.get_by_label("Throttle per minute:").fill("10")
    page.get_by_label("Quiet hours start:").fill(quiet_start)
    page.get_by_label("Quiet hours timezone:").fill("Lisbon")
    page.get_by_label("Reason:").fill("Pair rate limit; no sends at night")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator("#id_quiet_hours_end_error")).to_contain_text("both a start")
    expect(page.locator("#id_quiet_hours_timezone_error")).to_contain_text("IANA")
    walk.shot("settings-refused")
    page.get_by_label("Quiet hours end:").fill(quiet_end)
    page.get_by_label("Quiet hours timezone:").fill("Europe/Lisbon")
    walk.shot("settings-form")
    page.get_by_role("button", name="Save and continue editing").click()
    assert "was changed successfully" in walk.message()
    expect(page.get_by_label("Throttle per minute:")).to_have_value("10")
    walk.shot("settings-saved")

    # 5. The provider answers again: Start campaigns → reason.
    walk.tool("start_campaigns")
    walk.shot("start-confirmation")
    assert "Start campaigns: 1 row done." in walk.confirm("WhatsApp limit reset")
    expect(page.locator(".field-status")).to_contain_text("Running")
    walk.shot("started")

    # The dispatcher's next run after Retry-After, through the (sandbox) provider.
    later = timezone.now() + timedelta(seconds=RETRY_AFTER + 5)
    assert run_worker(CampaignDispatcherWorker, at=later).outcomes == {"sent": 3, "invalid": 1}
    page.reload()
    expect(status).to_contain_text("queue length 0")
    expect(status).to_contain_text("sent: 3")
    walk.shot("sent")

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.throttle_per_minute == 10
    assert (f"{campaign.quiet_hours_start:%H:%M}", f"{campaign.quiet_hours_end:%H:%M}") == (
        quiet_start,
        quiet_end,
    )
    assert campaign.quiet_hours_timezone == "Europe/Lisbon"
    events = AuditEvent.objects.filter(object_id=str(campaign.pk), actor=OPERATOR).order_by("id")
    assert [(e.event, e.reason) for e in events] == [
        ("notifications.campaign.stopped", "WhatsApp 429s (INC-21)"),
        ("notifications.campaign.settings_changed", "Pair rate limit; no sends at night"),
        ("notifications.campaign.started", "WhatsApp limit reset"),
    ]
    changed = events[1]
    assert (changed.before_state["throttle_per_minute"], changed.after_state) == (
        60,
        {
            "throttle_per_minute": 10,
            "quiet_hours_start": f"{quiet_start}:00",
            "quiet_hours_end": f"{quiet_end}:00",
            "quiet_hours_timezone": "Europe/Lisbon",
        },
    )

    # 4. Invalid numbers: Campaign targets → By status: invalid → all → the CSV export.
    walk.link("Campaign targets")
    walk.link("Invalid")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    page.locator("#action-toggle").check()
    page.get_by_label("Action:").select_option(label="Export invalid numbers (CSV)")
    walk.shot("export-invalid")
    with page.expect_download() as download:
        page.get_by_role("button", name="Go").click()
    exported = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [(row["campaign"], row["phone"]) for row in exported] == [
        ("Spring promo", "912 not a number")
    ]
    refused_number = CampaignTarget.objects.get(phone=REFUSED)
    assert (refused_number.status, refused_number.error_code) == ("failed", "send_failed")

    campaign_page = f"/admin/notifications/campaign/{campaign.pk}/change/"
    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/notifications/campaign/",
            campaign_page,
            "/admin/notifications/campaigntarget/?status__exact=invalid",
        ],
        refused=[
            f"/admin/notifications/campaign/{campaign.pk}/act/stop_campaigns/",
            f"/admin/notifications/campaign/{campaign.pk}/act/start_campaigns/",
        ],
    )
    # The viewer's campaign page has no settings to write in either.
    walk.open(campaign_page)
    expect(page.get_by_label("Throttle per minute:")).to_have_count(0)
