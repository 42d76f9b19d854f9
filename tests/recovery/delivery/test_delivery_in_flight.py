"""Deliveries in flight on the delivery loop, against a real threaded HTTP endpoint: each
integration's window and rate bound its calls, a 429 or a timeout halves the window and
successes grow it back, and no call is made that its lease could not cover."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from recovery.integrations.delivery.pipeline import (
    WINDOW_GROWTH_SUCCESSES,
    IntegrationWindow,
    delivery_loop,
)
from recovery.models import DeliveryAttempt, RecoveryItem
from recovery.workers import IntegrationDeliveryWorker
from tests.recovery.factories import IntegrationFactory, QueuedItemFactory


@pytest.fixture
def endpoint():
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


class Tracker:
    """Calls in flight at the endpoint, the peak, each call's arrival and key."""

    def __init__(self, *, delay: float, status_for=lambda n: 200) -> None:
        self.delay, self.status_for = delay, status_for
        self.lock = threading.Lock()
        self.current = self.peak = self.calls = 0
        self.arrivals: list[float] = []
        self.keys: Counter = Counter()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.current += 1
            self.calls += 1
            number = self.calls
            self.peak = max(self.peak, self.current)
            self.arrivals.append(time.monotonic())
            self.keys[request.headers["Idempotency-Key"]] += 1
        time.sleep(self.delay)
        with self.lock:
            self.current -= 1
        status = self.status_for(number)
        headers = {"Retry-After": "1"} if status == 429 else {}
        return Response("{}", status=status, headers=headers, content_type="application/json")


def partner(endpoint, *, items: int, max_in_flight: int, rate_per_second: int = 1000):
    """An integration at `endpoint` with its limits, and `items` deliveries due to it."""
    integration = IntegrationFactory(
        name="erp",
        endpoint_url=endpoint.url_for("/hook"),
        max_in_flight=max_in_flight,
        rate_per_second=rate_per_second,
    )
    queued = [QueuedItemFactory(integration=integration, payload={"n": n}) for n in range(items)]
    return integration, queued


def run_in_flight(settings, *, timeout: int = 2, in_flight: int = 64) -> dict:
    settings.INTEGRATION_HTTP_TIMEOUT_SECONDS = timeout
    settings.INTEGRATION_DELIVERY_IN_FLIGHT = in_flight
    worker = IntegrationDeliveryWorker()
    return worker.run_once(triggered_by="test", drain_seconds=20).as_dict()


@pytest.mark.django_db
def test_an_integrations_calls_in_flight_never_exceed_its_window(endpoint, settings):
    tracker = Tracker(delay=0.15)
    endpoint.expect_request("/hook").respond_with_handler(tracker)
    _, items = partner(endpoint, items=12, max_in_flight=3)
    summary = run_in_flight(settings)
    assert summary["outcomes"] == {"succeeded": 12}
    assert tracker.peak == 3  # three at a time: in flight together, never a fourth
    assert set(tracker.keys.values()) == {1} and len(tracker.keys) == 12
    assert RecoveryItem.objects.filter(status="succeeded").count() == len(items)
    assert DeliveryAttempt.objects.filter(outcome="succeeded").count() == 12


@pytest.mark.django_db
def test_the_rate_per_second_spaces_the_calls(endpoint, settings):
    tracker = Tracker(delay=0.0)
    endpoint.expect_request("/hook").respond_with_handler(tracker)
    partner(endpoint, items=10, max_in_flight=10, rate_per_second=10)
    assert run_in_flight(settings)["outcomes"] == {"succeeded": 10}
    # Ten calls at ten a second: the last starts about 0.9 s after the first, not at once.
    assert tracker.arrivals[-1] - tracker.arrivals[0] >= 0.8


@pytest.mark.django_db
def test_a_429_halves_the_window_once_and_successes_grow_it_back(endpoint, settings):
    tracker = Tracker(delay=0.1, status_for=lambda n: 429 if n <= 8 else 200)
    endpoint.expect_request("/hook").respond_with_handler(tracker)
    integration, _ = partner(endpoint, items=8, max_in_flight=8)
    summary = run_in_flight(settings)
    assert summary["outcomes"] == {"retry_scheduled": 8}
    # Eight 429s from calls sent together are one signal: 8 -> 4, not 8 -> 1.
    assert delivery_loop().window(integration.pk).window == 4
    retry = RecoveryItem.objects.filter(status="retrying").first()
    assert retry is not None and retry.failure_code == "HTTP_429"


def test_the_window_halves_on_trouble_and_grows_one_per_twenty_successes():
    async def scenario() -> list[float]:
        window = IntegrationWindow()
        window.configure(max_in_flight=16, rate_per_second=0)
        seen = [window.window]
        assert await window.acquire(time.monotonic() + 1)
        before = time.monotonic()
        await window.release(started=before, backed_off=True, succeeded=False)
        seen.append(window.window)
        # A call that started before that halving does not halve again.
        await window.release(started=before - 1, backed_off=True, succeeded=False)
        seen.append(window.window)
        for _ in range(WINDOW_GROWTH_SUCCESSES):
            await window.release(started=time.monotonic(), backed_off=False, succeeded=True)
        seen.append(window.window)
        return seen

    # On a thread of its own: the browser tests leave an event loop set on this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(lambda: asyncio.run(scenario())).result() == [16.0, 8.0, 8.0, 9.0]


@pytest.mark.django_db
def test_an_item_whose_lease_cannot_cover_its_call_is_not_called(endpoint, settings):
    settings.WORKER_LEASE_SECONDS = 1  # the floor: the timeout's worth and a little
    tracker = Tracker(delay=0.7)
    endpoint.expect_request("/hook").respond_with_handler(tracker)
    partner(endpoint, items=4, max_in_flight=1)
    summary = run_in_flight(settings, timeout=2)
    # One at a time, 0.7 s each: a call may start until about 1 s after the claim (the lease
    # less the timeout and margins), so two are made; the others are handed back uncalled.
    assert tracker.calls == 2
    assert summary["outcomes"] == {"succeeded": 2, "lease_lost": 2}
    waiting = RecoveryItem.objects.filter(status="pending")
    assert waiting.count() == 2 and not waiting.exclude(lease_owner="").exists()
    assert run_in_flight(settings, timeout=2)["outcomes"] == {"succeeded": 2}
    assert tracker.calls == 4 and set(tracker.keys.values()) == {1}


class FirstThreeHang(Tracker):
    """Calls 1-3 hang past the caller's 1 s timeout; the others answer at once."""

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.calls += 1
            number = self.calls
        time.sleep(1.5 if number <= 3 else 0.05)
        return Response("{}", content_type="application/json")


@pytest.mark.django_db
def test_timeouts_of_calls_sent_before_a_success_are_no_run_of_failures(endpoint, settings):
    """The circuit opens after CIRCUIT_FAILURE_THRESHOLD retryable failures in a row. Calls
    in flight end out of order: three calls sent together time out together, a second after
    calls sent just after them succeeded. In the order the calls left, that is no run of
    three failures, so the circuit stays closed (counted in the order they ended, it would
    open)."""
    from recovery.integrations.circuits import circuit_state

    settings.CIRCUIT_FAILURE_THRESHOLD = 3
    tracker = FirstThreeHang(delay=0)
    endpoint.expect_request("/hook").respond_with_handler(tracker)
    integration, _ = partner(endpoint, items=8, max_in_flight=8)
    summary = run_in_flight(settings, timeout=1, in_flight=8)
    assert summary["outcomes"] == {"succeeded": 5, "retry_scheduled": 3}
    timed_out = RecoveryItem.objects.filter(status="retrying")
    assert {item.failure_code for item in timed_out} == {"NETWORK_READ_TIMEOUT"}
    assert circuit_state(integration) == "closed"
