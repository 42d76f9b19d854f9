"""The console in a real browser (Debian chromium, headless, through Playwright)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from opsconsole.models import AuditEvent
from payments.workers import HostedSessionRecoveryWorker
from recovery import services
from recovery.models import RecoveryItem
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import HostedSessionFactory
from tests.recovery.factories import ParkedItemFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def staff(username: str, group: str):
    user = UserFactory(username=username, groups=[group])
    user.is_staff = True
    user.save()
    return user


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-123456")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_an_operator_filters_the_dlq_and_replays_with_a_reason(page, live_server):
    staff("opal", "Support operator")
    integration = services.integration_create(name="erp", endpoint_url="https://x.test", actor="t")
    stuck = ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    ParkedItemFactory(integration=integration, status="failed", failure_code="HTTP_400")
    log_in(page, live_server, "opal")

    page.goto(f"{live_server.url}/admin/recovery/recoveryitem/")
    page.locator("#changelist-filter").get_by_role("link", name="DLQ", exact=True).click()
    page.wait_for_url("**status__exact=dlq**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "replay_items")
    page.click("button[name=index]")
    assert page.locator("[data-testid=eligible-count]").inner_text() == "1"
    page.fill("#id_reason", "ERP is back (INC-12)")
    page.click("input[type=submit][value^='Yes']")
    page.wait_for_selector(".messagelist")
    assert page.locator(".messagelist").inner_text().strip() == "Replay items: 1 row done."

    assert RecoveryItem.objects.get(pk=stuck.pk).status == "replayed"
    event = AuditEvent.objects.get(event="platform.integration.recovery.replayed")
    assert (event.actor, event.reason) == ("opal", "ERP is back (INC-12)")
    page.goto(
        f"{live_server.url}/admin/platform/auditevent/?event=platform.integration.recovery.replayed"
    )
    assert "platform.integration.recovery.replayed" in page.locator("#result_list").inner_text()


def test_an_operator_opens_a_hosted_sessions_recovery_timeline(page, live_server, settings):
    settings.PAYMENTS_CHECKOUT_URL = ""
    settings.NOTIFICATION_CHANNELS = {}
    staff("opal", "Support operator")
    session = HostedSessionFactory()
    HostedSessionRecoveryWorker().run_once(triggered_by="manual")
    log_in(page, live_server, "opal")
    page.goto(f"{live_server.url}/admin/payments/hostedcheckoutsession/{session.pk}/change/")
    timeline = page.locator("[data-testid=recovery-timeline]")
    text = timeline.inner_text()
    assert "Recovery attempt 1: regenerated" in text
    assert "Email sent: hosted_session_recovery_email" in text
    assert "Next retry window" in text


def test_a_support_viewer_sees_no_replay_action(page, live_server):
    staff("vera", "Support viewer")
    integration = services.integration_create(name="erp", endpoint_url="https://x.test", actor="t")
    ParkedItemFactory(integration=integration, status="dlq")
    log_in(page, live_server, "vera")
    page.goto(f"{live_server.url}/admin/recovery/recoveryitem/?status__exact=dlq")
    assert page.locator("#result_list tbody tr").count() == 1
    options = page.locator("select[name=action] option").all_inner_texts()
    assert not any("Replay" in option for option in options)


def test_the_failure_inbox_page_shows_grouped_failures(page, live_server):
    staff("opal", "Support operator")
    integration = services.integration_create(name="erp", endpoint_url="https://x.test", actor="t")
    from datetime import timedelta

    from django.utils import timezone

    from opsconsole.monitoring.queue_depth import queue_depth_sample
    from recovery.inbox.groups import failure_groups

    ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    two_hours_ago = (timezone.now() - timedelta(hours=2)).replace(minute=0)
    queue_depth_sample(now=two_hours_ago)  # the group then (a sample the sparkline keeps)
    for _ in range(2):
        ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    queue_depth_sample()  # and now
    log_in(page, live_server, "opal")
    page.get_by_role("link", name="Failure inbox").click()
    page.wait_for_url("**/admin/failures/")
    groups = page.locator("[data-testid=failure-group]")
    expect(groups).to_have_count(1)
    assert "HTTP_503" in groups.first.inner_text()
    # Its sparkline draws the sampled counts: 1 then 3, as the database has them now.
    [group] = failure_groups()
    trend = page.get_by_test_id(f"group-trend-{group.fingerprint}")
    assert trend.get_attribute("data-latest") == str(group.count) == "3"
    assert trend.locator("svg polyline").get_attribute("points").count(",") == 2


def test_staff_land_on_the_overview_whose_charts_match_the_database(page, live_server):
    from datetime import timedelta

    from django.db.models import Sum
    from django.utils import timezone

    from recovery.models import DeliveryRollup

    staff("vera", "Support viewer")
    integration = services.integration_create(name="crm", endpoint_url="https://x.test", actor="t")
    minute = timezone.now().replace(second=0, microsecond=0)
    DeliveryRollup.objects.create(
        integration=integration, minute=minute, succeeded=4, failed=3, latency_le_250=7
    )
    DeliveryRollup.objects.create(
        integration=integration, minute=minute - timedelta(minutes=20), failed=2, dlq=1
    )
    from opsconsole.models import WorkerOutcomeMinute
    from opsconsole.monitoring.queue_depth import queue_depth_sample
    from opsconsole.workers.outcome_rollups import worker_outcomes_add

    worker_outcomes_add("refund_retry_worker", {"succeeded": 3, "dead_lettered": 2}, minute)
    ParkedItemFactory(integration=integration, status="dlq")
    queue_depth_sample()
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server, "vera")  # /admin/ is the overview
    # It leads with the counters, in the first screen, equal to the database.
    for counter in ("failing-now", "dlq", "stuck", "oldest-stuck"):
        expect(page.get_by_test_id(f"counter-{counter}")).to_be_in_viewport(ratio=1)
    dead = RecoveryItem.objects.filter(status="dlq").count()
    expect(page.get_by_test_id("counter-dlq")).to_have_text(str(dead))
    # Nothing is wider than a 1280-pixel window: no sideways scrolling at 3 a.m.
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in {widths[1]}"
    assert page.get_by_test_id("deliveries-last-hour").bounding_box()["width"] <= 1280
    # Every queue's outcomes: the refund queue's last hour draws its minute's row.
    refunds = page.get_by_test_id("outcomes-refund_retry_worker-hour")
    row = WorkerOutcomeMinute.objects.get(worker="refund_retry_worker")
    drawn = {
        bar.get_attribute("data-series"): int(bar.get_attribute("data-count"))
        for bar in refunds.locator("svg rect").all()
    }
    assert drawn == {"succeeded": row.succeeded, "dead_lettered": row.dead_lettered}
    # The delivery queue's depth sparkline ends at the sampled stuck count.
    stuck = RecoveryItem.objects.filter(status__in=("failed", "dlq")).count()
    depth = page.get_by_test_id("depth-integration_deliveries")
    assert depth.get_attribute("data-latest") == str(stuck) == "1"
    chart = page.locator("[data-testid=deliveries-last-hour]")
    assert chart.locator("svg rect").count() == 4  # succeeded and failed now; failed, dlq
    failed_in_db = DeliveryRollup.objects.filter(minute__gt=minute - timedelta(hours=1)).aggregate(
        n=Sum("failed")
    )["n"]
    shown = page.locator("[data-testid=deliveries-last-hour-total-failed]").inner_text()
    assert int(shown) == failed_in_db == 5
    # The page refreshes itself: a new outcome shows without a reload.
    DeliveryRollup.objects.filter(minute=minute).update(failed=6)
    # (A locator expectation, not wait_for_function: the page's Content-Security-Policy
    # forbids evaluating strings as code, and the refresh runs under it.)
    expect(page.get_by_test_id("deliveries-last-hour-total-failed")).to_have_text(
        "8", timeout=12_000
    )
    page.get_by_test_id("all-models").click()
    page.wait_for_url(f"{live_server.url}/admin/apps/")
    assert page.locator("#content-main .app-recovery").count() == 1
    # The integration's page: its success rate, latency and last day from the same rollups.
    page.goto(f"{live_server.url}/admin/recovery/integration/{integration.pk}/change/")
    card = page.get_by_test_id("delivery-chart")
    succeeded = DeliveryRollup.objects.aggregate(n=Sum("succeeded"))["n"]
    shown = page.get_by_test_id("integration-last-day-total-succeeded").inner_text()
    assert int(shown) == succeeded == 4
    assert "Success rate 30.8%" in card.inner_text()  # 4 of 13 attempts
    assert "p50 <=250 ms" in card.inner_text()


def test_the_api_docs_render_under_the_content_security_policy(page, live_server):
    blocked: list[str] = []
    # Scripts, styles, fonts and workers must all load; an image from another origin (Redoc's
    # "by Redocly" logo) is blocked, as the policy means it to be.
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text)
            if "Content Security Policy" in message.text
            and not message.text.startswith("Loading the image")
            else None
        ),
    )
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    page.goto(f"{live_server.url}/api/redoc/")
    expect(page.get_by_text("/api/v1/health/livez").first).to_be_attached(timeout=15_000)
    assert blocked == []
