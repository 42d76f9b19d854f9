"""Real processes and threads against PostgreSQL: nothing delivered twice, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from werkzeug import Request, Response

from recovery import services
from recovery.models import DeliveryAttempt, RecoveryItem
from recovery.workers import IntegrationDeliveryWorker
from tests.helpers import run_concurrently

PATH = "/hooks/crm"
# The scheduled delivery task, run in a process of its own (to be killed).
SCHEDULED_TASK = (
    "import django; django.setup();"
    "from recovery.tasks import run_integration_delivery_worker;"
    "run_integration_delivery_worker(triggered_by='doomed')"
)
ROOT = Path(settings.BASE_DIR)


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def counting_handler(counter: Counter, delay: float = 0.0, *, key: str = "Idempotency-Key"):
    """Answers 200 after `delay`, counting each call by its `key` header."""
    lock = threading.Lock()

    def handle(request: Request) -> Response:
        if delay:
            time.sleep(delay)
        with lock:
            counter[request.headers[key]] += 1
        return Response("ok")

    return handle


def twelve_items_behind_a_counting_endpoint(
    httpserver, hits: Counter, delay: float, *, max_in_flight: int = 10
) -> None:
    httpserver.expect_request(PATH).respond_with_handler(counting_handler(hits, delay=delay))
    integration = services.integration_create(
        name="crm",
        endpoint_url=httpserver.url_for(PATH),
        actor="test",
        max_in_flight=max_in_flight,
    )
    for n in range(12):
        services.recovery_item_enqueue(integration=integration, event_type="e", payload={"n": n})


def kill_after_calls(script: str, hits: Counter, calls: int, **env: str) -> None:
    """Run `script` in its own process and SIGKILL it once the endpoint saw `calls` calls."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
        **env,
    }
    doomed = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=environment)
    deadline = time.monotonic() + 30
    while sum(hits.values()) < calls and time.monotonic() < deadline:
        time.sleep(0.05)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)


def doomed_lease_seconds(*, timeout: int, configured: int = 2) -> int:
    """The lease the doomed worker took: `configured`, or the shortest that covers one call
    of `timeout` when that is longer."""
    with override_settings(INTEGRATION_HTTP_TIMEOUT_SECONDS=timeout):
        return IntegrationDeliveryWorker(lease_seconds=configured).lease_seconds


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_deliver_each_item_exactly_once(httpserver):
    hits: Counter = Counter()
    httpserver.expect_request(PATH).respond_with_handler(counting_handler(hits, delay=0.02))
    integration = services.integration_create(
        name="crm", endpoint_url=httpserver.url_for(PATH), actor="test"
    )
    items = [
        services.recovery_item_enqueue(integration=integration, event_type="e", payload={"n": n})
        for n in range(40)
    ]

    def work(_: int) -> None:
        worker = IntegrationDeliveryWorker(batch_size=5)
        while worker.run_once(triggered_by="test").claimed:
            pass

    with override_settings(INTEGRATION_HTTP_TIMEOUT_SECONDS=5):
        run_concurrently(work, 4)

    assert len(hits) == 40
    assert set(hits.values()) == {1}
    assert RecoveryItem.objects.filter(status="succeeded").count() == len(items)
    assert DeliveryAttempt.objects.count() == 40


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_nothing(httpserver):
    hits: Counter = Counter()
    # The whole batch is claimed at once; the partner takes one call at a time.
    twelve_items_behind_a_counting_endpoint(httpserver, hits, delay=0.25, max_in_flight=1)
    script = (
        "import django; django.setup();"
        "from recovery.workers import IntegrationDeliveryWorker;"
        "IntegrationDeliveryWorker(batch_size=12, lease_seconds=9).run_once(triggered_by='doomed')"
    )
    # The doomed worker's calls time out after 1 s; its 9 s lease lets a call start up to 3 s
    # after the claim (a lease always outlives the work under it).
    kill_after_calls(
        script, hits, 3, INTEGRATION_HTTP_TIMEOUT_SECONDS="1", INTEGRATION_DELIVERY_IN_FLIGHT="12"
    )
    lease = doomed_lease_seconds(timeout=1, configured=9)

    delivered_before_kill = RecoveryItem.objects.filter(status="succeeded").count()
    leased = RecoveryItem.objects.exclude(lease_owner="").filter(status="pending").count()
    assert 1 <= delivered_before_kill < 12
    assert leased == 12 - delivered_before_kill  # the rest are stranded under a dead lease

    survivor = IntegrationDeliveryWorker()
    assert survivor.run_once(triggered_by="test").claimed == 0  # leases still live
    time.sleep(lease + 0.2)
    while survivor.run_once(triggered_by="test").claimed:
        pass

    assert RecoveryItem.objects.filter(status="succeeded").count() == 12
    assert RecoveryItem.objects.exclude(lease_owner="").count() == 0
    # Every item arrived; any repeat (the one in flight at the kill) carried the same key.
    assert len(hits) == 12
    assert sum(hits.values()) - 12 <= 1


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_draining_run_with_two_processors_killed_mid_run_loses_nothing(httpserver):
    hits: Counter = Counter()
    twelve_items_behind_a_counting_endpoint(httpserver, hits, delay=0.2)
    kill_after_calls(
        SCHEDULED_TASK,
        hits,
        4,
        INTEGRATION_DELIVERY_CONCURRENCY="2",
        INTEGRATION_DELIVERY_IN_FLIGHT="1",
        WORKER_BATCH_SIZE="3",
        WORKER_LEASE_SECONDS="2",
        INTEGRATION_HTTP_TIMEOUT_SECONDS="1",
    )
    delivered_before_kill = RecoveryItem.objects.filter(status="succeeded").count()
    assert 1 <= delivered_before_kill < 12

    lease = doomed_lease_seconds(timeout=1)
    time.sleep(lease + 0.2)  # the dead processors' leases expire
    survivor = IntegrationDeliveryWorker()
    while survivor.run_once(triggered_by="test").claimed:
        pass

    assert RecoveryItem.objects.filter(status="succeeded").count() == 12
    assert RecoveryItem.objects.exclude(lease_owner="").count() == 0
    # At most one call in flight per processor at the kill; each repeat had the same key.
    assert len(hits) == 12
    assert sum(hits.values()) - 12 <= 2


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_with_calls_in_flight_repeats_no_more_than_it_had_in_flight(httpserver):
    hits: Counter = Counter()
    twelve_items_behind_a_counting_endpoint(httpserver, hits, delay=0.2)
    script = SCHEDULED_TASK
    in_flight = 4
    kill_after_calls(
        script,
        hits,
        5,
        INTEGRATION_DELIVERY_IN_FLIGHT=str(in_flight),
        WORKER_LEASE_SECONDS="2",
        INTEGRATION_HTTP_TIMEOUT_SECONDS="2",
    )
    delivered_before_kill = RecoveryItem.objects.filter(status="succeeded").count()
    assert 1 <= delivered_before_kill < 12
    lease = doomed_lease_seconds(timeout=2)
    time.sleep(lease + 0.2)  # the dead process's leases expire
    survivor = IntegrationDeliveryWorker()
    while survivor.run_once(triggered_by="test").claimed:
        pass
    assert RecoveryItem.objects.filter(status="succeeded").count() == 12
    succeeded = DeliveryAttempt.objects.filter(outcome="succeeded")
    assert sorted(succeeded.values_list("item_id", flat=True)) == sorted(
        RecoveryItem.objects.values_list("pk", flat=True)
    )  # each item recorded succeeded exactly once
    assert len(hits) == 12
    # Only the calls in flight at the kill were made again (with the same key).
    assert sum(hits.values()) - 12 <= in_flight
