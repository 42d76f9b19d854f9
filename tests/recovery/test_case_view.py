from __future__ import annotations

from decimal import Decimal

import pytest

from bookings.models import Booking
from opsconsole.models import AuditEvent
from payments.models import Payment, WebhookFailure
from recovery.cases.refs import user_ref
from recovery.models import FailureResolution, FailureResolutionRequest
from tests.bookings.factories import BookingFactory
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import HostedSessionFactory
from tests.payments.providers import SECRET
from tests.recovery.case_world import webhook_fails_for
from tests.recovery.factories import QueuedItemFactory

EMAIL = "Maria.Lopez@Example.test"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def maria(db):
    return UserFactory(username="maria", email=EMAIL, groups=["Booking client"])


@pytest.fixture
def lead(db):
    """An operator (operators may see personal data)."""
    return UserFactory(username="lead", groups=["Support operator"])


def search(client, q: str) -> list[dict]:
    response = client.get("/api/v1/cases", {"q": q})
    assert response.status_code == 200, response.content
    return response.json()["matches"]


def whole_timeline(client, ref: str, limit: int) -> list[dict]:
    entries, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"/api/v1/cases/{ref}", params).json()
        entries += body["timeline"]
        cursor = body["next_cursor"]
        if cursor is None:
            return entries


@pytest.mark.django_db
def test_an_email_a_booking_id_and_a_session_reference_find_the_same_customer(maria, lead):
    booking = BookingFactory(customer=maria, paid=Decimal("30.00"))
    session = HostedSessionFactory(customer_email="maria.lopez@example.test")
    client = token_client(lead)
    by_email = search(client, "  maria.lopez@EXAMPLE.test ")
    assert [(m["ref"], m["kind"]) for m in by_email] == [(user_ref(maria.pk), "email")]
    assert search(client, str(booking.pk))[0]["ref"] == user_ref(maria.pk)
    assert search(client, session.reference)[0]["ref"] == user_ref(maria.pk)
    # The reference the Payments list shows leads to the same customer.
    payment = Payment.objects.get(subject=f"booking:{booking.pk}")
    assert [(m["ref"], m["kind"]) for m in search(client, payment.reference)] == [
        (user_ref(maria.pk), "payment_reference")
    ]
    # As the Payments list's subject column and page titles write a booking.
    assert [m["ref"] for m in search(client, f"booking:{booking.pk}")] == [user_ref(maria.pk)]
    assert search(client, f"#{booking.pk}")[0]["ref"] == user_ref(maria.pk)
    assert search(client, "nobody@example.test") == []


@pytest.mark.django_db
def test_an_empty_query_is_a_400_envelope(viewer_client):
    response = viewer_client.get("/api/v1/cases", {"q": "   "})
    assert (response.status_code, error_of(response)["code"]) == (400, "OPS-400-INVALID-PAYLOAD")
    response = viewer_client.get("/api/v1/cases")
    assert response.status_code == 400


@pytest.mark.django_db
def test_the_timeline_pages_by_keyset_in_time_order_and_reads_each_entry_once(maria, lead):
    for hour in (9, 11, 13):
        BookingFactory(customer=maria, hour=hour, paid=Decimal("20.00"))
    HostedSessionFactory(customer_email=EMAIL.lower())
    client = token_client(lead)
    ref = user_ref(maria.pk)
    whole = whole_timeline(client, ref, limit=500)
    paged = whole_timeline(client, ref, limit=3)
    assert paged == whole
    keys = [(e["kind"], e["id"]) for e in whole]
    assert len(keys) == len(set(keys))
    assert [e["at"] for e in whole] == sorted(e["at"] for e in whole)
    kinds = {e["kind"] for e in whole}
    assert {"booking", "hold", "payment", "hosted_session", "audit"} <= kinds


@pytest.mark.smoke
@pytest.mark.django_db
def test_a_customer_with_bookings_payments_and_deliveries_opens_on_either_database(maria, lead):
    """The deliveries that name any of the customer's bookings, payments or sessions are one
    compound statement: it must run on SQLite (make run's database) as on PostgreSQL."""
    booking = BookingFactory(customer=maria, hour=9, paid=Decimal("20.00"))
    session = HostedSessionFactory(customer_email=EMAIL.lower())
    named = QueuedItemFactory(payload={"booking_id": booking.pk})
    QueuedItemFactory(payload={"session_id": session.pk})
    QueuedItemFactory(payload={"booking_id": booking.pk + 1000})  # someone else's
    entries = whole_timeline(token_client(lead), user_ref(maria.pk), limit=500)
    deliveries = {e["id"] for e in entries if e["kind"] == "delivery"}
    assert named.pk in deliveries
    assert len(deliveries) == 2


@pytest.mark.django_db
def test_without_personal_data_contacts_are_masked_and_each_opening_is_audited(
    maria, viewer_client, settings
):
    HostedSessionFactory(customer_email=EMAIL.lower(), customer_phone="+351911222333")
    (match,) = search(viewer_client, EMAIL)
    assert match["contact"] == "M***@Example.test"
    body = viewer_client.get(f"/api/v1/cases/{match['ref']}").json()
    assert body["customer"]["emails"] == ["m***@example.test"]
    session = next(e for e in body["timeline"] if e["kind"] == "hosted_session")
    assert EMAIL.lower() not in str(session) and "+351911222333" not in str(session)
    opened = AuditEvent.objects.get(event="case.opened")
    assert (opened.object_type, opened.object_id, opened.actor) == (
        "customer",
        f"user:{maria.pk}",
        "viewer",
    )
    assert "example" not in str(opened.metadata)

    settings.CASE_REASON_REQUIRED = True
    response = viewer_client.get(f"/api/v1/cases/{match['ref']}")
    assert (response.status_code, error_of(response)["code"]) == (
        400,
        "OPS-400-CASE-REASON-REQUIRED",
    )
    assert AuditEvent.objects.filter(event="case.opened").count() == 1
    ok = viewer_client.get(f"/api/v1/cases/{match['ref']}", {"reason": "ticket 4411"})
    assert ok.status_code == 200
    assert AuditEvent.objects.filter(event="case.opened").latest("id").reason == "ticket 4411"


@pytest.mark.django_db
def test_an_unknown_or_forged_ref_is_a_404(viewer_client):
    for ref in ("cus_AAAA", "user:1", "cus_" + "x" * 40):
        response = viewer_client.get(f"/api/v1/cases/{ref}")
        assert (response.status_code, error_of(response)["code"]) == (
            404,
            "OPS-404-CASE-NOT-FOUND",
        ), ref


@pytest.mark.django_db
def test_money_reconciles_and_warns_where_it_disagrees_with_state(maria, lead):
    paid = BookingFactory(customer=maria, hour=9, paid=Decimal("40.00"))
    BookingFactory(customer=maria, hour=11, paid=Decimal("25.00"))
    cancelled = Booking.objects.exclude(pk=paid.pk).get(customer=maria)
    Booking.objects.filter(pk=cancelled.pk).update(status="CANCELLED")
    Booking.objects.filter(pk=paid.pk).update(payment_status="PAID")
    Payment.objects.filter(subject=f"booking:{paid.pk}").update(amount_refunded=Decimal("40.00"))
    body = token_client(lead).get(f"/api/v1/cases/{user_ref(maria.pk)}").json()
    assert body["money"]["totals"] == {
        "EUR": {"paid": "65.00", "refunded": "40.00", "net": "25.00"}
    }
    codes = {(w["code"], w.get("booking_id")) for w in body["money"]["warnings"]}
    assert ("paid_booking_without_money", paid.pk) in codes
    assert ("cancelled_booking_still_charged", cancelled.pk) in codes


@pytest.mark.django_db(transaction=True)
def test_the_failed_payment_webhook_is_replayed_from_the_case_and_the_booking_is_paid(client):
    maria = UserFactory(username="maria", email=EMAIL, groups=["Booking client"])
    operator = UserFactory(username="operator", groups=["Support operator"])
    booking = BookingFactory(customer=maria)
    webhook_fails_for(client, booking)
    failure = WebhookFailure.objects.get()
    api = token_client(operator)
    (match,) = search(api, f"pi_case_{booking.pk}")
    assert match["ref"] == user_ref(maria.pk)
    case = api.get(f"/api/v1/cases/{match['ref']}").json()
    entry = next(e for e in case["timeline"] if e["kind"] == "webhook_failure")
    assert entry["failure"]["source"] == "webhook_failure"
    assert entry["failure"]["actions"] == ["replay", "resolve"]
    assert [w["code"] for w in case["money"]["warnings"]] == ["payment_without_booking"]

    url = f"/api/v1/cases/{match['ref']}/failures/webhook_failure/{failure.pk}/replay"
    response = api.post(
        url, {"reason": "customer called"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert (response.status_code, response.json()["outcome"]) == (200, "reprocessed")
    again = api.post(url, {"reason": "customer called"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert again.json() == response.json()
    booking.refresh_from_db()
    assert booking.payment_status == "PAID"
    assert AuditEvent.objects.filter(event="case.failure.replayed").count() == 1
    after = api.get(f"/api/v1/cases/{match['ref']}").json()
    assert after["money"]["warnings"] == []
    assert after["money"]["totals"]["EUR"]["net"] == "45.00"


@pytest.mark.django_db
def test_a_failure_of_another_customer_cannot_be_acted_on_through_this_case(maria, operator_client):
    other = UserFactory(username="other", email="other@example.test")
    other_booking = BookingFactory(customer=other)
    Booking.objects.filter(pk=other_booking.pk).update(status="CANCELLING")
    url = f"/api/v1/cases/{user_ref(maria.pk)}/failures/cancellation/{other_booking.pk}/resolve"
    response = operator_client.post(url, {"reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert response.status_code == 404
    assert not FailureResolution.objects.exists()
    assert not FailureResolutionRequest.objects.exists()
    assert Booking.objects.get(pk=other_booking.pk).status == "CANCELLING"


@pytest.mark.django_db
def test_each_timeline_row_of_the_admins_case_page_links_to_its_record(maria, lead, client):
    import re

    BookingFactory(customer=maria, paid=Decimal("30.00"))
    HostedSessionFactory(customer_email="maria.lopez@example.test")
    lead.is_staff = True
    lead.save()
    client.force_login(lead)
    page = client.get(f"/admin/cases/{user_ref(maria.pk)}/").content.decode()
    links = re.findall(r'<a href="([^"]+)" data-testid="case-entry-link">', page)
    kinds = set(re.findall(r'data-kind="([a-z_]+)"', page))
    assert {"booking", "hosted_session", "payment"} <= kinds
    assert len(links) >= 3
    assert all(client.get(link).status_code == 200 for link in links)


@pytest.mark.django_db
def test_a_customers_email_and_own_phone_open_one_case_and_a_shared_phone_merges_nobody(
    maria, lead
):
    from notifications.models import CommunicationLog

    HostedSessionFactory(customer_email="maria.lopez@example.test", customer_phone="+351910000321")
    CommunicationLog.objects.create(
        channel="sms",
        template="checkout_link",
        recipient="+351910000321",
        status="sent",
        provider="sandbox",
        subject_type="payments.hostedcheckoutsession",
        subject_id="1",
        triggered_by="automation",
        idempotency_key="sms-maria",
    )
    client = token_client(lead)
    by_email = search(client, EMAIL)
    by_phone = search(client, "+351 910 000 321")
    assert [m["ref"] for m in by_phone] == [m["ref"] for m in by_email] == [user_ref(maria.pk)]
    kinds = {e["kind"] for e in whole_timeline(client, user_ref(maria.pk), 50)}
    assert "message" in kinds  # the text to her phone is on her case

    # The phone another customer also gave: nobody's case takes it.
    HostedSessionFactory(customer_email="joao@example.test", customer_phone="+351910000321")
    assert [m["ref"] for m in search(client, "+351910000321")] != [user_ref(maria.pk)]


@pytest.mark.django_db
def test_what_the_customer_saw_includes_the_notifications_sent_to_them(maria, lead):
    """A booking confirmation sent by email is something the customer saw; one still queued
    is not."""
    from notifications.models import Notification
    from notifications.services import notification_enqueue

    sent = notification_enqueue(
        channel="email", to=EMAIL, template="booking_confirmed", context={"booking_id": 1}
    )
    Notification.objects.filter(pk=sent.pk).update(status="SENT", external_id="em_1")
    notification_enqueue(
        channel="email", to=EMAIL, template="booking_reminder", context={"booking_id": 1}
    )
    body = token_client(lead).get(f"/api/v1/cases/{user_ref(maria.pk)}").json()
    assert [(m["channel"], m["template"], m["status"]) for m in body["customer_saw"]] == [
        ("email", "booking_confirmed", "sent")
    ]
