"""Fault proofs: the database dying mid-request, and everything draining after an outage.

(The SIGKILL-mid-batch proof is tests/recovery/delivery/test_delivery_crash_safety.py;
providers that hang are cut off by the timeout in the delivery, channel, preview and
checkout tests.)
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest
import time_machine
from django.db import connection, connections
from django.utils import timezone

from bookings.models import Booking
from opsconsole.models import AuditEvent
from payments.models import Payment
from recovery import services
from recovery.models import RecoveryItem
from recovery.workers import IntegrationDeliveryWorker
from tests.bookings.factories import BookingFactory, ResourceFactory
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory


def raw_connection() -> psycopg.Connection:
    params = connection.settings_dict
    return psycopg.connect(
        dbname=params["NAME"],
        host=params.get("HOST") or None,
        port=params.get("PORT") or None,
        user=params.get("USER") or None,
        password=params.get("PASSWORD") or None,
        autocommit=True,
    )


@pytest.mark.django_db(transaction=True)
def test_the_database_dying_mid_request_is_a_503_and_no_partial_write():
    operator = UserFactory(username="cashier", groups=["Support operator"])
    booking = BookingFactory(customer=UserFactory(username="payer"), resource=ResourceFactory())
    client = token_client(operator)
    answer: dict = {}

    def record_payment() -> None:
        try:
            answer["response"] = client.post(
                "/api/v1/payments/offline",
                {"booking_id": booking.pk, "amount": "25.00", "method": "cash"},
                format="json",
            )
        finally:
            connections.close_all()

    with raw_connection() as blocker, raw_connection() as killer:
        # Hold the payments table so the request stops mid-transaction, after it has locked
        # the booking and before the payment row and the PAID mark are written.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE payments_payment IN EXCLUSIVE MODE")
        request = threading.Thread(target=record_payment)
        request.start()
        pid = None
        for _ in range(200):
            row = killer.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query ILIKE 'INSERT INTO \"payments_payment\"%'"
            ).fetchone()
            if row:
                pid = row[0]
                break
            time.sleep(0.05)
        assert pid is not None, "the request never reached the payment insert"
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])
        blocker.execute("ROLLBACK")
        request.join(timeout=30)

    response = answer["response"]
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "PAY-503-DEPENDENCY-UNAVAILABLE"
    assert not Payment.objects.exists()
    assert Booking.objects.get(pk=booking.pk).payment_status == "UNPAID"
    assert not AuditEvent.objects.filter(event="booking.paid").exists()


@pytest.mark.django_db
def test_after_the_provider_recovers_everything_drains_exactly_once(httpserver, settings):
    settings.CIRCUIT_FAILURE_THRESHOLD = 1000  # this proof is about retries, not the breaker
    integration = services.integration_create(
        name="crm", endpoint_url=httpserver.url_for("/hook"), actor="t"
    )
    items = [
        services.recovery_item_enqueue(integration=integration, event_type="e", payload={"n": n})
        for n in range(20)
    ]
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    worker = IntegrationDeliveryWorker()
    worker.run_once(triggered_by="outage")
    assert RecoveryItem.objects.filter(status="retrying").count() == 20
    httpserver.clear()
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    now = timezone.now()
    for minute in range(1, 120):
        with time_machine.travel(now + timedelta(minutes=minute)):
            worker.run_once(triggered_by="recovered")
        if not RecoveryItem.objects.exclude(status="succeeded").exists():
            break
    assert RecoveryItem.objects.filter(status="succeeded").count() == len(items)
    delivered = [r.headers["Idempotency-Key"] for r, _ in httpserver.log if r.path == "/hook"]
    assert sorted(delivered) == sorted(f"recovery-item-{i.pk}" for i in items)
