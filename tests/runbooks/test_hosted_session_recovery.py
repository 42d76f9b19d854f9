"""docs/runbooks/hosted-session-recovery.md, walked in the browser: a stalled session found
by the list's filter, its link regenerated with an override window and automated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from opsconsole.models import AuditEvent
from payments.models import HostedCheckoutSession
from payments.services.sessions import EVENT_REGENERATED
from tests.payments.factories import HostedSessionFactory
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_stalled_sessions_link_is_regenerated_with_an_override_window(page, live_server):
    support_staff()
    # Four automated attempts and nobody told: the runbook's "stalled" (> 3 attempts
    # without a notification).
    stalled = HostedSessionFactory(
        reference="hcs_stalled", status="failed", attempt_count=4, attempts_since_notification=4
    )
    HostedSessionFactory(reference="hcs_fine")
    window = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    walk = Walk(page, live_server.url, "hosted-session-recovery")

    walk.log_in(OPERATOR)
    walk.link("Hosted checkout sessions")
    walk.link("Stalled (>3 attempts without notification)")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    walk.shot("stalled-sessions")
    walk.link("hcs_stalled", within=rows.first)
    expect(page.get_by_test_id("recovery-timeline")).to_be_visible()
    walk.shot("session-page")
    walk.tool("regenerate_links")
    options = page.get_by_test_id("action-options")
    window_box = options.get_by_label("Next retry window (optional)")
    automated_box = options.get_by_label("Automated (scripted cadence change)")
    # A window already past is refused, and the page comes back with what was typed.
    past = timezone.now() - timedelta(hours=1)
    window_box.fill(f"{past:%Y-%m-%d %H:%M}")
    automated_box.check()
    refused = walk.confirm("Processor outage over; retry on Wednesday (INC-7)")
    assert "Correct the options below." in refused
    expect(options.locator(".errorlist")).to_have_text("Must be in the future (UTC).")
    expect(window_box).to_have_value(f"{past:%Y-%m-%d %H:%M}")
    expect(automated_box).to_be_checked()
    expect(page.get_by_label("Reason (recorded in the audit log):")).to_have_value(
        "Processor outage over; retry on Wednesday (INC-7)"
    )
    walk.shot("regenerate-refused-past-window")
    stalled.refresh_from_db()
    assert stalled.status == HostedCheckoutSession.Status.FAILED
    window_box.fill(f"{window:%Y-%m-%d %H:%M}")
    walk.shot("regenerate-confirmation")
    done = walk.confirm("Processor outage over; retry on Wednesday (INC-7)")
    assert "Regenerate checkout links: 1 row done." in done
    walk.shot("regenerated")

    stalled.refresh_from_db()
    assert stalled.status == HostedCheckoutSession.Status.PENDING
    assert stalled.next_retry_at == window
    assert stalled.metadata["automation"]["override_next_retry_at"] == window.isoformat()
    assert stalled.metadata["triggered_by"] == OPERATOR
    assert stalled.metadata["trigger_automated"] is True
    event = AuditEvent.objects.get(event=EVENT_REGENERATED, object_id=str(stalled.pk))
    assert (event.actor, event.reason) == (
        OPERATOR,
        "Processor outage over; retry on Wednesday (INC-7)",
    )
    assert event.metadata == {"automated": True, "override_next_retry_at": window.isoformat()}
    # The timeline on the page shows the operator's override.
    expect(page.get_by_test_id("recovery-timeline")).to_contain_text(OPERATOR)
    # The runbook's "Confirm it worked": the automation metadata, on the page.
    automation = page.get_by_test_id("automation-metadata")
    expect(automation).to_contain_text(f"triggered by {OPERATOR}")
    expect(automation).to_contain_text("automated yes")
    expect(automation).to_contain_text(f"override window {window:%Y}")

    session_page = f"/admin/payments/hostedcheckoutsession/{stalled.pk}/change/"
    viewer_reads_but_acts_on_nothing(
        walk,
        reads=["/admin/payments/hostedcheckoutsession/?stalled=yes", session_page],
        refused=[
            f"/admin/payments/hostedcheckoutsession/{stalled.pk}/act/regenerate_links/",
            f"/admin/payments/hostedcheckoutsession/{stalled.pk}/act/notify_customers/",
        ],
    )
