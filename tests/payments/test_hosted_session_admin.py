from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from opsconsole.models import AuditEvent
from tests.helpers import action_post
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import HostedSessionFactory
from tests.payments.providers import channels_answer, checkout_answers
from tests.workers import run_queued_tasks

CHANGELIST = "/admin/payments/hostedcheckoutsession/"


@pytest.mark.django_db
def test_the_stalled_filter_finds_sessions_with_more_than_3_silent_attempts(admin_client):
    stalled = HostedSessionFactory(attempt_count=4, attempts_since_notification=4)
    HostedSessionFactory(attempt_count=4, attempts_since_notification=3)
    listed = admin_client.get(CHANGELIST, {"stalled": "yes"})
    assert [s.pk for s in listed.context["cl"].result_list] == [stalled.pk]


@pytest.mark.django_db
def test_the_session_page_shows_the_recovery_timeline(admin_client, providers):
    checkout_answers(providers)
    channels_answer(providers)
    session = HostedSessionFactory()
    from payments.workers import HostedSessionRecoveryWorker

    HostedSessionRecoveryWorker().run_once(triggered_by="schedule")
    page = admin_client.get(f"{CHANGELIST}{session.pk}/change/").content.decode()
    assert 'data-testid="recovery-timeline"' in page
    assert "Recovery attempt 1: regenerated" in page
    assert "Email sent: hosted_session_recovery_email" in page
    assert "Next retry window" in page


@pytest.mark.django_db
def test_regenerate_from_the_admin_asks_for_a_reason_and_is_audited(
    admin_client, providers, django_capture_on_commit_callbacks
):
    checkout_answers(providers)
    channels_answer(providers)
    session = HostedSessionFactory()
    confirm = action_post(admin_client, CHANGELIST, "regenerate_links", [session.pk])
    assert confirm.status_code == 200
    assert confirm.context["eligible_count"] == 1
    no_reason = action_post(
        admin_client, CHANGELIST, "regenerate_links", [session.pk], confirm="yes", reason=" "
    )
    assert no_reason.status_code == 200  # back on the confirmation page
    assert not AuditEvent.objects.filter(event="payments.hosted_session.regenerated").exists()
    with django_capture_on_commit_callbacks(execute=True):
        action_post(
            admin_client, CHANGELIST, "regenerate_links", [session.pk], confirm="yes", reason="call"
        )
    event = AuditEvent.objects.get(event="payments.hosted_session.regenerated")
    assert (event.actor, event.reason) == ("root", "call")
    run_queued_tasks("payments.tasks.hosted_session_notify_after_regeneration")
    notified = AuditEvent.objects.get(event="payments.hosted_session.customer_notified")
    # The task names the operator who asked, and joins their request's trace.
    assert (notified.actor, notified.request_id) == ("root", event.request_id)


@pytest.mark.django_db
def test_a_support_viewer_sees_the_timeline_but_no_actions(client):
    viewer = UserFactory(username="viewer-staff", groups=["Support viewer"])
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    session = HostedSessionFactory()
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert "regenerate_links" not in listing.content.decode()
    assert client.get(f"{CHANGELIST}{session.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_an_admin_action_over_many_rows_stops_before_gunicorn_would_kill_it(
    admin_client, providers, settings
):
    """Each regeneration calls the checkout provider: the action stops when the request has
    less than one web-bounded call's time left, says so, and leaves the rest untouched."""
    import json
    import time

    from werkzeug import Response

    settings.WEB_REQUEST_TIMEOUT_SECONDS = 7  # a budget of 2 s after the 5 s margin
    settings.PROVIDER_WEB_TIMEOUT_SECONDS = 1

    def slow_link(request):
        time.sleep(0.6)
        expires = (timezone.now() + timedelta(days=1)).isoformat()
        body = {
            "url": "https://checkout.example.test/pay/slow",
            "id": "slow",
            "expires_at": expires,
        }
        return Response(json.dumps(body), 200, content_type="application/json")

    providers.expect_request("/checkout", method="POST").respond_with_handler(slow_link)
    sessions = [HostedSessionFactory() for _ in range(3)]
    action_post(
        admin_client,
        CHANGELIST,
        "regenerate_links",
        [s.pk for s in sessions],
        confirm="yes",
        reason="many",
    )
    response = admin_client.get(CHANGELIST)
    regenerated = AuditEvent.objects.filter(event="payments.hosted_session.regenerated").count()
    assert regenerated == 2
    assert len(providers.log) == 2
    page = response.content.decode()
    assert "Stopped after 2 rows" in page
    assert "2 rows done; 1 not done" in page


@pytest.mark.django_db
def test_the_timeline_shows_the_notification_cadence_and_next_allowed_time(
    admin_client, providers, settings
):
    from datetime import timedelta

    from payments.selectors import hosted_session_recovery_state
    from payments.workers import HostedSessionRecoveryWorker

    settings.HOSTED_RECOVERY_NOTIFY_INTERVAL_MINUTES = 240
    checkout_answers(providers)
    channels_answer(providers)
    session = HostedSessionFactory()
    assert hosted_session_recovery_state(session)["nextNotificationAllowedAt"] is not None
    HostedSessionRecoveryWorker().run_once(triggered_by="schedule")
    session.refresh_from_db()
    allowed = session.last_notified_at + timedelta(minutes=240)
    state = hosted_session_recovery_state(session)
    assert state["notificationCadenceMinutes"] == 240
    assert state["nextNotificationAllowedAt"] == allowed.isoformat()
    page = admin_client.get(f"{CHANGELIST}{session.pk}/change/").content.decode()
    assert "every 240 min" in page and f"{allowed:%Y-%m-%d %H:%M:%S} UTC" in page


@pytest.mark.django_db
def test_regenerate_from_the_sessions_page_with_an_override_window_and_automated(
    admin_client, providers, django_capture_on_commit_callbacks
):
    """The regenerate (overrideNextRetryAt, automated) from the session's own page, filled as
    the confirmation page asks (docs/runbooks/hosted-session-recovery.md)."""
    import re
    from datetime import timedelta

    from django.utils import timezone

    from tests.admin_forms.form_filler import filled, form_controls

    checkout_answers(providers)
    session = HostedSessionFactory()
    page = admin_client.get(f"{CHANGELIST}{session.pk}/change/").content.decode()
    url = re.search(
        r'href="([^"]+)" data-testid="object-tool-regenerate_links">Regenerate the link…<', page
    ).group(1)
    confirm = admin_client.get(url).content.decode()
    assert 'data-testid="action-options"' in confirm
    window = (timezone.now() + timedelta(hours=3)).replace(second=0, microsecond=0)
    typed = {
        "option-override_next_retry_at": window.strftime("%Y-%m-%d %H:%M"),
        "option-automated": "on",
        "reason": "customer asked for tonight",
    }
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(url, filled(form_controls(confirm, "confirm-with-reason"), typed))
    assert done.status_code == 302
    session.refresh_from_db()
    assert session.override_next_retry_at == window.isoformat()
    event = AuditEvent.objects.get(event="payments.hosted_session.regenerated")
    assert event.reason == "customer asked for tonight"
    # Automated: the customer hears from the scheduler's next attempt, not from a task now.
    assert run_queued_tasks("payments.tasks.hosted_session_notify_after_regeneration") == []


@pytest.mark.django_db
def test_the_recovery_timeline_writes_times_one_way_and_no_raw_dicts(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    from opsconsole.evidence import audit
    from payments.models import HostedCheckoutSession

    session = HostedSessionFactory()
    when = timezone.now().replace(microsecond=0) + timedelta(hours=2)
    HostedCheckoutSession.objects.filter(pk=session.pk).update(
        metadata={
            "recovery_attempts": [
                {
                    "attempt": 1,
                    "outcome": "regenerated",
                    "at": timezone.now().isoformat(),
                    "triggered_by": "schedule",
                    "next_retry_at": when.isoformat(),
                }
            ]
        }
    )
    audit.record(
        "payments.hosted_session.regenerated",
        obj=session,
        actor="root",
        reason="call",
        metadata={"link": {"provider": "sandbox", "expires_in_minutes": 60}},
    )
    page = admin_client.get(f"{CHANGELIST}{session.pk}/change/").content.decode()
    timeline = page[page.index('data-testid="recovery-timeline"') :]
    assert f"next_retry_at={when:%Y-%m-%d %H:%M:%S} UTC" in timeline
    assert "link=provider=sandbox; expires_in_minutes=60" in timeline
    assert (
        "{&#x27;" not in timeline and "T0" not in timeline.split("</table>")[0].split("<tbody>")[1]
    )
