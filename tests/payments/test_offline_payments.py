from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from bookings.models import Booking
from opsconsole.models import AuditEvent
from payments.models import Payment
from tests.bookings.factories import BookingFactory, ResourceFactory
from tests.helpers import error_of, run_concurrently, token_client
from tests.opsconsole.factories import UserFactory

URL = "/api/v1/payments/offline"


@pytest.fixture
def booking(db):
    return BookingFactory(customer=UserFactory(username="payer"), resource=ResourceFactory())


@pytest.mark.django_db
def test_it_records_the_payment_and_marks_the_booking_paid(operator_client, booking):
    response = operator_client.post(
        URL, {"booking_id": booking.pk, "amount": "25.00", "method": "cash"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["duplicate"] is False
    assert body["booking"]["payment_status"] == "PAID"
    # The payment is RECORDED, by the staff member who recorded it
    # (docs/runbooks/bookings-payments-notifications.md).
    assert (body["payment"]["status"], body["payment"]["recorded_by"]) == ("recorded", "operator")
    payment = Payment.objects.get()
    assert (payment.subject, payment.method, str(payment.amount)) == (
        f"booking:{booking.pk}",
        "cash",
        "25.00",
    )
    booking.refresh_from_db()
    assert (booking.payment_status, booking.payment_id) == ("PAID", payment.pk)
    assert AuditEvent.objects.filter(event="booking.paid", actor="operator").exists()


@pytest.mark.django_db
def test_the_same_booking_and_amount_within_5_minutes_is_one_payment(operator_client, booking):
    body = {"booking_id": booking.pk, "amount": "25.00", "method": "cash"}
    first = operator_client.post(URL, body, format="json").json()
    again = operator_client.post(URL, body, format="json")
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["payment"]["id"] == first["payment"]["id"]
    # Later, the booking is simply paid already (issue 17: a second payment is a 409).
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        later = operator_client.post(URL, body, format="json")
    assert later.status_code == 409
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_an_idempotency_key_replays_the_stored_answer(operator_client, booking):
    body = {"booking_id": booking.pk, "amount": "10.00", "method": "bank_transfer"}
    first = operator_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-1")
    second = operator_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    other = operator_client.post(
        URL, {**body, "amount": "11.00"}, format="json", HTTP_IDEMPOTENCY_KEY="pay-1"
    )
    assert (other.status_code, error_of(other)["code"]) == (422, "PAY-422-IDEMPOTENCY-KEY-REUSED")
    assert Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_produce_one_payment():
    operator = UserFactory(username="cashier", groups=["Support operator"])
    booking = BookingFactory(customer=UserFactory(username="payer"), resource=ResourceFactory())
    body = {"booking_id": booking.pk, "amount": "25.00", "method": "cash"}
    statuses = run_concurrently(
        lambda n: token_client(operator).post(URL, body, format="json").status_code, 6
    )
    assert sorted(statuses) == [200] * 5 + [201]
    assert Payment.objects.count() == 1
    assert Booking.objects.get(pk=booking.pk).payment_status == "PAID"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"method": "bitcoin"}, "method"),
        ({"method": "card"}, "method"),
        ({"booking_id": "x"}, "booking_id"),
    ],
)
def test_bad_input_is_a_400_and_records_nothing(operator_client, booking, change, field):
    body = {"booking_id": booking.pk, "amount": "25.00", "method": "cash", **change}
    response = operator_client.post(URL, body, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "PAY-400-INVALID-PAYLOAD"
    assert field in error["details"]["fields"]
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_unknown_booking_viewers_and_cancelled_bookings(operator_client, viewer_client, booking):
    body = {"booking_id": 999999, "amount": "5.00", "method": "cash"}
    assert operator_client.post(URL, body, format="json").status_code == 404
    body["booking_id"] = booking.pk
    assert viewer_client.post(URL, body, format="json").status_code == 403
    from bookings.services import booking_cancel

    booking_cancel(booking_id=booking.pk, actor=booking.customer, reason="x")
    refused = operator_client.post(URL, body, format="json")
    assert (refused.status_code, error_of(refused)["code"]) == (409, "BKG-409-BOOKING-NOT-PAYABLE")
    assert not Payment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_fails_closed_when_the_database_is_down(request):
    operator = UserFactory(username="cashier", groups=["Support operator"])
    booking = BookingFactory(customer=UserFactory(username="payer"), resource=ResourceFactory())
    client = token_client(operator)
    request.getfixturevalue("database_down")
    response = client.post(
        URL, {"booking_id": booking.pk, "amount": "5.00", "method": "cash"}, format="json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (
        503,
        "PAY-503-DEPENDENCY-UNAVAILABLE",
    )


@pytest.mark.django_db
def test_a_booking_already_paid_refuses_another_payment(operator_client, booking):
    body = {"booking_id": booking.pk, "amount": "25.00", "method": "cash"}
    assert operator_client.post(URL, body, format="json").status_code == 201
    other = operator_client.post(URL, {**body, "amount": "30.00"}, format="json")
    assert (other.status_code, error_of(other)["code"]) == (409, "BKG-409-BOOKING-ALREADY-PAID")
    # Past the duplicate window the same amount is refused too.
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        late = operator_client.post(URL, body, format="json")
    assert (late.status_code, error_of(late)["code"]) == (409, "BKG-409-BOOKING-ALREADY-PAID")
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_a_retry_taking_over_a_crashed_requests_key_never_pays_twice(operator, booking):
    """The first request committed its payment and died before storing its response: its
    key stays in flight. A retry after the in-flight timeout takes the key over and finds
    the payment by its key-derived reference, however late it comes."""
    from bookings.services import booking_offline_payment_record
    from opsconsole.http.idempotency import idempotency_key_claim, request_fingerprint

    body = {"booking_id": booking.pk, "amount": "25.00", "method": "cash"}
    idempotency_key_claim(
        owner=str(operator.pk),
        key="till-7",
        fingerprint=request_fingerprint(method="POST", path=URL, body=body),
        method="POST",
        path=URL,
        error_prefix="PAY",
    )
    booking_offline_payment_record(
        booking_id=booking.pk,
        amount=Decimal("25.00"),
        method="cash",
        actor=operator,
        idempotency_key="till-7",
    )
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        retry = token_client(operator).post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="till-7")
    assert retry.status_code == 200, retry.content
    assert retry.json()["duplicate"] is True
    assert Payment.objects.count() == 1
