from __future__ import annotations

import pytest

from opsconsole.models import AuditEvent
from tests.helpers import action_post
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import HostedSessionFactory
from tests.payments.providers import channels_answer, checkout_answers

CHANGELIST = "/admin/payments/hostedcheckoutsession/"


@pytest.mark.django_db
def test_the_stalled_filter_finds_sessions_with_more_than_3_silent_attempts(admin_client):
    stalled = HostedSessionFactory(retry_count=4, attempts_since_notification=4)
    HostedSessionFactory(retry_count=4, attempts_since_notification=3)
    listed = admin_client.get(CHANGELIST, {"stalled": "yes"})
    assert [s.pk for s in listed.context["cl"].result_list] == [stalled.pk]


@pytest.mark.django_db
def test_the_session_page_shows_the_recovery_timeline(admin_client, providers):
    checkout_answers(providers)
    channels_answer(providers)
    session = HostedSessionFactory()
    from recovery.workers import HostedSessionRecoveryWorker

    HostedSessionRecoveryWorker().run_once(triggered_by="schedule")
    page = admin_client.get(f"{CHANGELIST}{session.pk}/change/").content.decode()
    assert 'data-testid="recovery-timeline"' in page
    assert "Recovery attempt 1: regenerated" in page
    assert "Email sent: hosted_session_recovery_email" in page
    assert "Next retry window" in page


@pytest.mark.django_db
def test_regenerate_from_the_admin_asks_for_a_reason_and_is_audited(admin_client, providers):
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
    action_post(
        admin_client, CHANGELIST, "regenerate_links", [session.pk], confirm="yes", reason="call"
    )
    event = AuditEvent.objects.get(event="payments.hosted_session.regenerated")
    assert (event.actor, event.reason) == ("root", "call")
    assert AuditEvent.objects.filter(event="payments.hosted_session.customer_notified").exists()


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
