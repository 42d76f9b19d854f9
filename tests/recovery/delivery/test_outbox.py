"""The transactional outbox: each business change writes its event in its own transaction,
one queue item per subscribed integration. A rolled-back change delivers nothing; a
committed one is never lost, even when the process dies right after the commit."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from bookings import services as bookings
from opsconsole.db.outbox import EVENT_TYPES
from payments import vouchers
from payments.refunds import payment_record, refund_request
from payments.services import hosted_session_transition
from recovery.models import RecoveryItem
from tests.bookings.factories import BookingFactory, ResourceFactory
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import HostedSessionFactory
from tests.recovery.delivery.test_delivery_crash_safety import ROOT, database_url
from tests.recovery.factories import IntegrationFactory


def delivered_types(integration) -> list[str]:
    return list(
        RecoveryItem.objects.filter(integration=integration)
        .order_by("id")
        .values_list("event_type", flat=True)
    )


@pytest.fixture
def everything(db):
    return IntegrationFactory(name="warehouse", event_types=["*"])


@pytest.mark.django_db
def test_each_event_becomes_one_item_per_subscribed_integration(everything):
    bookings_only = IntegrationFactory(name="crm", event_types=["booking.cancelled"])
    refunds_only = IntegrationFactory(name="ledger", event_types=["refund.succeeded"])
    switched_off = IntegrationFactory(name="old", event_types=["*"], enabled=False)
    customer = UserFactory(username="ana", groups=["Booking client"])

    booking = BookingFactory(customer=customer, resource=ResourceFactory(), paid=Decimal("40"))
    bookings.booking_cancel(booking_id=booking.pk, actor=customer, reason="ill")

    voucher = vouchers.voucher_issue(description="d", value=Decimal("10"), actor="t")
    vouchers.voucher_redeem(code=voucher.code, station_id="lisbon-1", actor="t")
    other = vouchers.voucher_issue(description="d", value=Decimal("10"), actor="t")
    vouchers.voucher_void(voucher_id=other.pk, actor="t", reason="misprint")
    payment_record(
        reference="cash-1",
        subject="booking:x",
        amount=Decimal("5"),
        currency="EUR",
        method="cash",
        actor="t",
    )
    session = HostedSessionFactory()
    hosted_session_transition(session_id=session.pk, transition="complete", actor="stripe")

    assert delivered_types(everything) == [
        "booking.confirmed",
        "payment.succeeded",
        "refund.succeeded",
        "booking.cancelled",
        "voucher.redeemed",
        "voucher.voided",
        "payment.recorded",
        "hosted_session.completed",
    ]
    assert delivered_types(bookings_only) == ["booking.cancelled"]
    assert delivered_types(refunds_only) == ["refund.succeeded"]
    assert delivered_types(switched_off) == []
    # One event, one id: the same webhook-id at every integration it reached.
    cancelled = RecoveryItem.objects.filter(event_type="booking.cancelled")
    assert cancelled.count() == 2
    assert len({item.event_id for item in cancelled}) == 1
    assert cancelled[0].event_id.startswith("evt_")
    assert cancelled[0].payload["booking_id"] == booking.pk


@pytest.mark.django_db
def test_a_refund_that_gives_up_publishes_refund_failed(everything, httpserver, settings):
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    httpserver.expect_request("/v1/refunds").respond_with_json(
        {"error": {"message": "charge disputed"}}, status=400
    )
    payment = payment_record(
        reference="p",
        subject="booking:1",
        amount=Decimal("9"),
        currency="EUR",
        method="card",
        provider_payment_id="pi_9",
    )
    refund_request(payment_id=payment.pk, amount=Decimal("9"), reason="x", actor="t")
    assert delivered_types(everything) == ["payment.succeeded", "refund.failed"]
    assert RecoveryItem.objects.get(event_type="refund.failed").payload["refund_id"] > 0


def test_the_catalogue_is_the_issue_s():
    assert set(EVENT_TYPES) == {
        "booking.confirmed",
        "booking.cancelled",
        "booking.fulfilled",
        "payment.recorded",
        "payment.succeeded",
        "refund.succeeded",
        "refund.failed",
        "voucher.redeemed",
        "voucher.voided",
        "hosted_session.completed",
        "hosted_session.abandoned",
    }


@pytest.mark.django_db
def test_a_type_outside_the_catalogue_is_refused(everything):
    from opsconsole.db.outbox import publish

    with pytest.raises(ValueError), transaction.atomic():
        publish("booking.renamed", {"booking_id": 1})
    assert not RecoveryItem.objects.exists()


@pytest.mark.django_db
def test_a_rolled_back_change_delivers_nothing(everything):
    voucher = vouchers.voucher_issue(description="d", value=Decimal("10"), actor="t")
    before = RecoveryItem.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        vouchers.voucher_void(voucher_id=voucher.pk, actor="t", reason="oops")
        raise RuntimeError("the request failed after the change")
    assert RecoveryItem.objects.count() == before
    voucher.refresh_from_db()
    assert voucher.status != "void"


DIE_AFTER = """
import os, django
django.setup()
from django.db import transaction
from payments import vouchers
with transaction.atomic():
    vouchers.voucher_void(voucher_id={voucher_id}, actor="t", reason="dies")
    {before_commit}
os._exit(9)  # killed the instant the commit returned: no on_commit, no relay, nothing after
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("before_commit", "expected"), [("pass", 1), ("os._exit(9)", 0)])
def test_a_process_that_dies_around_the_commit_loses_nothing_and_invents_nothing(
    everything, before_commit, expected
):
    import os

    voucher = vouchers.voucher_issue(description="d", value=Decimal("10"), actor="t")
    script = DIE_AFTER.format(voucher_id=voucher.pk, before_commit=before_commit)
    environment = {**os.environ, "DATABASE_URL": database_url()}
    finished = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, check=False
    )
    assert finished.returncode == 9
    items = RecoveryItem.objects.filter(event_type="voucher.voided", integration=everything)
    assert items.count() == expected
    voucher.refresh_from_db()
    assert (voucher.status == "void") is bool(expected)
    if expected:
        assert items.get().next_retry_at <= timezone.now()  # due: the worker delivers it
