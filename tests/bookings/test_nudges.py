"""Loyalty and onboarding nudges (docs/runbooks/incident-response.md): one nudge each, through
the email channel, with consent, suppression and quiet hours respected; a failed send is a
span marked ERROR, retried, then parked for the inbox; the re-run scripts send nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from bookings.models import ContactPreference, Nudge, Referral
from bookings.nudges import LoyaltyNudgeDispatch, OnboardingNudges
from notifications.models import CommunicationLog, SuppressedRecipient
from opsconsole.models import AuditEvent
from payments.vouchers import voucher_issue
from recovery.inbox.groups import failure_groups
from tests.bookings.factories import BookingFactory, ResourceFactory
from tests.helpers import run_concurrently
from tests.opsconsole.factories import UserFactory
from tests.workers import run_worker

# Noon in Lisbon: outside everybody's quiet hours (21:00-08:00 local by default).
NOON = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


@pytest.fixture
def email(httpserver, settings):
    settings.NOTIFICATION_CHANNELS = {"email": {"url": httpserver.url_for("/email")}}
    settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = 0.5
    return httpserver


@pytest.fixture
def noon():
    with time_machine.travel(NOON, tick=True):
        yield NOON


def customer(name: str, *, consent: bool = True, tz: str = "Europe/Lisbon", **fields):
    user = UserFactory(username=name, groups=["Booking client"], **fields)
    ContactPreference.objects.create(customer=user, nudges_allowed=consent, timezone=tz)
    return user


def expiring_voucher(owner, days: float = 3):
    return voucher_issue(
        description="Winter credit",
        value=Decimal("20.00"),
        customer_email=owner.email,
        actor="desk",
        expires_at=timezone.now() + timedelta(days=days),
    )


def sent_to(address: str) -> int:
    return CommunicationLog.objects.filter(
        recipient=address, template="nudge", status="sent"
    ).count()


@pytest.mark.django_db
def test_a_voucher_about_to_expire_gets_one_nudge_with_consent_only(email, noon):
    email.expect_request("/email").respond_with_json({"id": "em_1"}, status=202)
    ana, bo = customer("ana"), customer("bo", consent=False)
    expiring_voucher(ana)
    expiring_voucher(bo)
    voucher_issue(
        description="far",
        value=Decimal("5"),
        customer_email=ana.email,
        actor="d",
        expires_at=timezone.now() + timedelta(days=60),
    )
    assert run_worker(LoyaltyNudgeDispatch).outcomes == {"sent": 1, "skipped": 1}
    assert sent_to(ana.email) == 1 and sent_to(bo.email) == 0
    assert Nudge.objects.get(customer=bo).skip_reason == "no consent to nudges"
    request, _ = email.log[0]
    assert json.loads(request.get_data())["to"] == ana.email
    # Later runs owe nothing more: one nudge per voucher, ever.
    run_worker(LoyaltyNudgeDispatch)
    run_worker(LoyaltyNudgeDispatch, at=NOON + timedelta(days=1, hours=1))
    assert sent_to(ana.email) == 1 and Nudge.objects.count() == 2


@pytest.mark.django_db
def test_suppressed_addresses_are_skipped_and_quiet_hours_wait_for_the_morning(email, noon):
    email.expect_request("/email").respond_with_json({"id": "em_2"}, status=202)
    cy = customer("cy")
    SuppressedRecipient.objects.create(channel="email", recipient=cy.email, reason="bounced")
    tokyo = customer("dee", tz="Asia/Tokyo")  # 21:00 there at noon UTC: quiet
    expiring_voucher(cy)
    expiring_voucher(tokyo)
    assert run_worker(LoyaltyNudgeDispatch).outcomes == {"skipped": 1, "deferred": 1}
    assert "SUPPRESSED" in Nudge.objects.get(customer=cy).skip_reason
    waiting = Nudge.objects.get(customer=tokyo)
    assert waiting.status == "PENDING"
    assert waiting.next_retry_at == datetime(2026, 12, 8, 23, 0, tzinfo=UTC)  # 08:00 in Tokyo
    assert run_worker(LoyaltyNudgeDispatch, at=NOON + timedelta(hours=11, minutes=1)).outcomes == {
        "sent": 1
    }


@pytest.mark.django_db
def test_a_referral_is_thanked_once_the_referred_customer_has_paid(email, noon):
    email.expect_request("/email").respond_with_json({"id": "em_3"}, status=202)
    eve, fin = customer("eve"), customer("fin")
    Referral.objects.create(referrer=eve, referred=fin)
    BookingFactory(customer=fin, resource=ResourceFactory(), hour=10)  # booked, not paid
    assert run_worker(LoyaltyNudgeDispatch).claimed == 0
    BookingFactory(customer=fin, resource=ResourceFactory(), hour=12, paid=Decimal("30"))
    assert run_worker(LoyaltyNudgeDispatch).outcomes == {"sent": 1}
    assert Nudge.objects.get().kind == "referral_thanks" and sent_to(eve.email) == 1


@pytest.mark.django_db
def test_a_failed_send_is_an_error_span_then_retries_then_parks(
    email,
    noon,
    collector,
    settings,
):
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    settings.NUDGE_MAX_ATTEMPTS = 2
    email.expect_request("/email").respond_with_data("unavailable", status=503)
    gus = customer("gus")
    expiring_voucher(gus)
    assert run_worker(LoyaltyNudgeDispatch).outcomes == {"retry_scheduled": 1}
    nudge = Nudge.objects.get()
    assert run_worker(
        LoyaltyNudgeDispatch, at=nudge.next_retry_at + timedelta(seconds=1)
    ).outcomes == {"parked": 1}
    sends = [span for _, span in collector() if span.name == "loyalty_nudge_dispatch.send"]
    assert len(sends) == 2
    assert {span.status.code for span in sends} == {Status.STATUS_CODE_ERROR}
    nudge.refresh_from_db()
    assert (nudge.status, nudge.failure_code) == ("PARKED", "http_503")
    assert [g for g in failure_groups() if g.source == "nudge"]


@pytest.mark.django_db
def test_the_onboarding_sequence_goes_once_in_order_and_stops_when_they_book(email, noon):
    email.expect_request("/email").respond_with_json({"id": "em_4"}, status=202)
    hal = customer("hal", date_joined=NOON - timedelta(days=2))
    ivy = customer("ivy", date_joined=NOON - timedelta(days=8))
    customer("new", date_joined=NOON - timedelta(hours=3))  # too early for the first step
    customer("old", date_joined=NOON - timedelta(days=40))  # outside the window
    assert run_worker(OnboardingNudges).outcomes == {"sent": 2}  # step 1 for hal and ivy
    assert run_worker(OnboardingNudges).outcomes == {"sent": 1}  # then step 2 for ivy
    assert run_worker(OnboardingNudges).outcomes == {"sent": 1}  # then step 3 for ivy
    assert run_worker(OnboardingNudges).claimed == 0
    assert sorted(Nudge.objects.filter(customer=ivy).values_list("kind", flat=True)) == [
        "onboarding_1",
        "onboarding_2",
        "onboarding_3",
    ]
    BookingFactory(customer=hal, resource=ResourceFactory(), hour=10)
    # Two days on, only the customer who signed up at 09:00 is owed a first step.
    assert run_worker(OnboardingNudges, at=NOON + timedelta(days=2)).outcomes == {"sent": 1}
    assert list(Nudge.objects.filter(customer=hal).values_list("kind", flat=True)) == [
        "onboarding_1"
    ]


@pytest.mark.django_db
def test_the_onboarding_script_re_runs_a_window_and_sends_nothing_twice(email, noon, settings):
    settings.NUDGE_MAX_ATTEMPTS = 1
    email.expect_oneshot_request("/email").respond_with_data("down", status=503)
    email.expect_request("/email").respond_with_json({"id": "em_5"}, status=202)
    jo = customer("jo", date_joined=NOON - timedelta(days=2))
    kai = customer("kai", date_joined=NOON - timedelta(days=2))
    run_worker(OnboardingNudges)
    assert Nudge.objects.filter(status="PARKED").count() == 1
    out = StringIO()
    call_command("onboarding_nudges", since="2026-12-01", until="2026-12-08", stdout=out)
    summary = json.loads(out.getvalue())
    assert (summary["requeued"], summary["outcomes"]) == (1, {"sent": 1})
    assert sent_to(jo.email) == 1 and sent_to(kai.email) == 1
    assert AuditEvent.objects.get(event="notifications.nudge.requeued").actor == (
        "manage.py onboarding_nudges"
    )
    again = StringIO()
    call_command("onboarding_nudges", since="2026-12-01", until="2026-12-08", stdout=again)
    assert json.loads(again.getvalue())["claimed"] == 0
    assert sent_to(jo.email) == 1 and sent_to(kai.email) == 1


@pytest.mark.django_db
def test_the_weekly_digest_script_sends_each_unsent_week_of_the_window_once(email, settings):
    settings.OPERATIONS_DIGEST_EMAIL = "ops@example.test"
    email.expect_request("/email").respond_with_json({"id": "em_6"}, status=202)
    out = StringIO()
    call_command("run_weekly_digest", since="2026-W45", until="2026-W47", stdout=out)
    weeks = [json.loads(line) for line in out.getvalue().splitlines()]
    assert weeks == [
        {"week": "2026-W45", "outcome": "sent"},
        {"week": "2026-W46", "outcome": "sent"},
        {"week": "2026-W47", "outcome": "sent"},
    ]
    again = StringIO()
    call_command("run_weekly_digest", since="2026-W46", until="2026-W47", stdout=again)
    assert [json.loads(line)["outcome"] for line in again.getvalue().splitlines()] == [
        "already_sent",
        "already_sent",
    ]
    assert len(email.log) == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatches_send_each_nudge_once(email, noon):
    email.expect_request("/email").respond_with_json({"id": "em_7"}, status=202)
    owners = [customer(f"c{n}") for n in range(10)]
    for owner in owners:
        expiring_voucher(owner)
    run_concurrently(
        lambda n: LoyaltyNudgeDispatch(batch_size=2).run_once(
            triggered_by=f"race-{n}", drain_seconds=5
        ),
        3,
    )
    assert Nudge.objects.filter(status="SENT").count() == 10
    assert len(email.log) == 10
    assert {json.loads(r.get_data())["to"] for r, _ in email.log} == {o.email for o in owners}
