"""A lease always outlives the work under it: a claimed item's call starts only while its
lease can still cover the call, so a second processor never calls out for an item whose
lease still lives, and an item whose lease ran out waiting is handed back, not lost."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connections
from werkzeug import Request, Response

from recovery import services
from recovery.models import RecoveryItem
from recovery.workers import IntegrationDeliveryWorker

ITEMS = 14
CALL_SECONDS = 0.8
TIMEOUT_SECONDS = 1  # item budget 4 s, so the lease is 7 s; the calls take over 11 s


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_two_processors_against_a_slow_endpoint_never_call_one_item_twice(httpserver, settings):
    # The whole batch is claimed at once, and the partner takes one call at a time, so most
    # calls would start after their leases ran out.
    settings.INTEGRATION_HTTP_TIMEOUT_SECONDS = TIMEOUT_SECONDS
    settings.INTEGRATION_DELIVERY_IN_FLIGHT = ITEMS
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def slow(request: Request) -> Response:
        time.sleep(CALL_SECONDS)
        with lock:
            calls[request.headers["Idempotency-Key"]] += 1
        return Response('{"ok": true}', status=200, content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    integration = services.integration_create(
        name="slow", endpoint_url=httpserver.url_for("/slow"), actor="t", max_in_flight=1
    )
    for n in range(ITEMS):
        services.recovery_item_enqueue(integration=integration, event_type="e", payload={"n": n})

    def worker() -> IntegrationDeliveryWorker:
        # lease_seconds=1 asks for less than one item needs; the worker raises it to cover
        # one item's worst case.
        return IntegrationDeliveryWorker(lease_seconds=1, batch_size=ITEMS)

    first_done = threading.Event()

    def first() -> None:
        try:
            worker().run_once(triggered_by="test")
        finally:
            first_done.set()
            connections.close_all()

    def second() -> None:
        # Keeps trying to claim the whole time, as a second machine's worker would.
        try:
            while not first_done.is_set():
                worker().run_once(triggered_by="test")
                time.sleep(0.2)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    time.sleep(0.3)  # the first processor claims the whole batch
    threads[1].start()
    for thread in threads:
        thread.join(timeout=60)
    assert worker().lease_seconds >= TIMEOUT_SECONDS + 3
    # What was handed back unsent is delivered by a later run.
    while worker().run_once(triggered_by="test").claimed:
        pass
    assert sum(calls.values()) == ITEMS, calls
    assert set(calls.values()) == {1}, calls
    assert set(RecoveryItem.objects.values_list("status", flat=True)) == {"succeeded"}
