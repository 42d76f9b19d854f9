"""The listening delivery process (`run_worker integration_delivery_worker --listen`) as the
Procfile runs it, in a process of its own against PostgreSQL: woken by the NOTIFY of the
transaction that enqueued, never early for a row still waiting for its retry, and a SIGKILL
under load loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone
from werkzeug import Request, Response

from opsconsole.models import WorkerListener, WorkerStatus
from opsconsole.workers import listeners
from recovery import services
from recovery.models import RecoveryItem
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory
from tests.recovery.delivery.test_delivery_crash_safety import counting_handler, database_url

PATH = "/hooks/crm"
ROOT = Path(settings.BASE_DIR)
pytestmark = pytest.mark.django_db(transaction=True)


def listen_url() -> str:
    """Behind PgBouncer (scripts/with-pgbouncer.sh) the listener's direct connection, to this
    test's database: a NOTIFY reaches only listeners of the same database."""
    direct = os.environ.get("DATABASE_LISTEN_URL", "")
    if not direct:
        return ""
    parts = urlsplit(direct)
    return urlunsplit(parts._replace(path=f"/{connection.settings_dict['NAME']}"))


def start_listener(**env: str) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_LISTEN_URL": listen_url(),
        "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
        **env,
    }
    started = timezone.now()
    listener = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "integration_delivery_worker", "--listen"],
        cwd=ROOT,
        env=environment,
    )
    deadline = time.monotonic() + 30
    while not (
        WorkerListener.objects.filter(connected=True, owner__endswith=f":{listener.pid}").exists()
        and WorkerStatus.objects.filter(
            name="integration_delivery_worker", last_run_started_at__gte=started
        ).exists()
    ):
        assert listener.poll() is None, "the listener exited"
        assert time.monotonic() < deadline, "the listener never reported itself"
        time.sleep(0.05)
    time.sleep(0.5)  # past its first claim: from here only a wake or the poll finds work
    return listener


def stop(listener: subprocess.Popen[bytes]) -> None:
    if listener.poll() is None:
        listener.send_signal(signal.SIGTERM)
        listener.wait(30)


def counting_endpoint(httpserver, hits: Counter, delay: float = 0.0) -> object:
    """An integration whose partner counts each call by its webhook-id."""
    handler = counting_handler(hits, delay, key="webhook-id")
    httpserver.expect_request(PATH).respond_with_handler(handler)
    return services.integration_create(
        name="crm", endpoint_url=httpserver.url_for(PATH), actor="test"
    )


def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def webhook_id(item: RecoveryItem) -> str:
    return item.webhook_id  # the same on every attempt (recovery.integrations.signing)


@pytest.mark.processes
def test_the_enqueueing_commit_wakes_the_listener(httpserver, monitoring_client, admin_client):
    """Polling once a minute, the listener still delivers at once: the NOTIFY sent with the
    commit woke it."""
    hits: Counter = Counter()
    integration = counting_endpoint(httpserver, hits)
    listener = start_listener(LISTEN_POLL_MS="60000")
    try:
        row = WorkerListener.objects.get()
        assert (row.worker, row.wake_source) == ("integration_delivery_worker", "listen")
        with transaction.atomic():
            item = services.recovery_item_enqueue(
                integration=integration, event_type="booking.confirmed", payload={"n": 1}
            )
        wait_for(lambda: hits, seconds=20)
        wait_for(lambda: RecoveryItem.objects.get(pk=item.pk).status == "succeeded")
        assert hits == Counter({webhook_id(item): 1})
        # While it runs, no task-queue wake is needed: the listener was woken with the commit.
        assert listeners.listening("integration_delivery_worker")
        # Readiness and the overview name it, how it is woken and its lag.
        readiness = monitoring_client.get("/api/v1/health/readyz").json()["components"]
        component = readiness["integration_delivery_worker_listener"]
        assert component["status"] == "ready"
        (shown,) = component["details"]["listeners"]
        assert (shown["wake_source"], shown["connected"]) == ("listen", True)
        assert component["details"]["note"].startswith("1 listening (listen), lag ")
        page = admin_client.get("/admin/").content.decode()
        assert 'data-testid="readiness-integration_delivery_worker_listener"' in page
        assert "1 listening (listen), lag " in page
    finally:
        stop(listener)
    # A stopped listener takes its row with it: nothing claims to listen any more.
    assert not WorkerListener.objects.exists()
    assert not listeners.listening("integration_delivery_worker")


@pytest.mark.processes
def test_an_event_posted_to_the_ingestion_api_wakes_the_listener(httpserver):
    """The ingestion statement itself sends the NOTIFY (one round trip for the request)."""
    hits: Counter = Counter()
    integration = counting_endpoint(httpserver, hits)
    listener = start_listener(LISTEN_POLL_MS="60000")
    try:
        producer = token_client(UserFactory(username="shop", groups=["Event producer"]))
        response = producer.post(
            f"/platform/integrations/{integration.pk}/events",
            {"event_type": "booking.confirmed", "event_id": "evt_1", "payload": {"n": 1}},
            format="json",
        )
        assert response.status_code == 202, response.content
        wait_for(lambda: RecoveryItem.objects.filter(status="succeeded").exists(), seconds=20)
        (item,) = RecoveryItem.objects.all()
        assert hits == Counter({webhook_id(item): 1})
    finally:
        stop(listener)


@pytest.mark.processes
def test_a_wake_delivers_only_what_is_due(httpserver):
    """A row waiting out its retry (Retry-After, backoff) is not delivered by a wake that
    another row's commit sent; the due row is."""
    hits: Counter = Counter()
    integration = counting_endpoint(httpserver, hits)
    listener = start_listener(LISTEN_POLL_MS="60000")
    try:
        with transaction.atomic():
            waiting = services.recovery_item_enqueue(
                integration=integration, event_type="e", payload={"n": "later"}
            )
            RecoveryItem.objects.filter(pk=waiting.pk).update(
                status="retrying", next_retry_at=timezone.now() + timedelta(hours=1)
            )
        due = services.recovery_item_enqueue(
            integration=integration, event_type="e", payload={"n": "now"}
        )
        wait_for(lambda: RecoveryItem.objects.get(pk=due.pk).status == "succeeded")
        assert hits == Counter({webhook_id(due): 1})
        assert RecoveryItem.objects.get(pk=waiting.pk).status == "retrying"
    finally:
        stop(listener)


@pytest.mark.processes
def test_a_retry_falling_due_while_a_call_is_in_flight_is_claimed_by_the_poll(httpserver):
    """No commit announces a retry's time: the listener's poll finds it, also while a call to
    a slow partner keeps the drain busy (not only once the drain is idle)."""
    hits: Counter = Counter()
    lock = threading.Lock()

    def handle(request: Request) -> Response:
        if json.loads(request.data)["n"] == "slow":
            time.sleep(8)
        with lock:
            hits[request.headers["webhook-id"]] += 1
        return Response("ok")

    httpserver.expect_request(PATH).respond_with_handler(handle)
    integration = services.integration_create(
        name="crm", endpoint_url=httpserver.url_for(PATH), actor="test"
    )
    # One processor, so no idle second one polls in its place.
    listener = start_listener(
        LISTEN_POLL_MS="300",
        INTEGRATION_HTTP_TIMEOUT_SECONDS="10",
        INTEGRATION_DELIVERY_CONCURRENCY="1",
    )
    try:
        with transaction.atomic():
            retry = services.recovery_item_enqueue(
                integration=integration, event_type="e", payload={"n": "retry"}
            )
            RecoveryItem.objects.filter(pk=retry.pk).update(
                status="retrying", next_retry_at=timezone.now() + timedelta(seconds=1)
            )
        slow = services.recovery_item_enqueue(
            integration=integration, event_type="e", payload={"n": "slow"}
        )
        # Delivered while the slow call (8 s) is still in flight.
        wait_for(lambda: RecoveryItem.objects.get(pk=retry.pk).status == "succeeded", seconds=6)
        assert webhook_id(slow) not in hits
        wait_for(lambda: RecoveryItem.objects.get(pk=slow.pk).status == "succeeded", seconds=20)
    finally:
        stop(listener)


def test_a_rolled_back_enqueue_wakes_nobody():
    """NOTIFY goes with the commit: a transaction that rolls back sends nothing."""
    import psycopg

    conninfo = listen_url() or listeners.listen_conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"LISTEN {listeners.channel('integration_delivery_worker')}")
        with pytest.raises(RuntimeError), transaction.atomic():
            listeners.announce("integration_delivery_worker")
            raise RuntimeError("the enqueue failed")
        assert list(conn.notifies(timeout=0.5)) == []
        listeners.announce("integration_delivery_worker")  # autocommit: sent at once
        assert len(list(conn.notifies(timeout=5, stop_after=1))) == 1


@pytest.mark.processes
def test_a_listener_killed_under_load_loses_nothing_and_doubles_only_its_calls_in_flight(
    httpserver,
):
    """Events keep coming while the listener is SIGKILLed and another takes over: every event
    arrives; a repeat is one of the killed process's calls in flight, with the same
    webhook-id."""
    hits: Counter = Counter()
    integration = counting_endpoint(httpserver, hits, delay=0.05)
    in_flight = 4
    env = {
        "INTEGRATION_DELIVERY_IN_FLIGHT": str(in_flight),
        "INTEGRATION_DELIVERY_CONCURRENCY": "1",
        "WORKER_LEASE_SECONDS": "2",
        "INTEGRATION_HTTP_TIMEOUT_SECONDS": "1",
        "LISTEN_POLL_MS": "200",
    }
    first = start_listener(**env)
    items: list[RecoveryItem] = []

    def produce() -> None:
        try:
            for n in range(120):
                items.append(
                    services.recovery_item_enqueue(
                        integration=integration, event_type="e", payload={"n": n}
                    )
                )
                time.sleep(0.01)
        finally:
            connection.close()

    producer = threading.Thread(target=produce)
    producer.start()
    second = None
    try:
        wait_for(lambda: sum(hits.values()) >= 30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        WorkerListener.objects.all().delete()  # the killed process's row, stale by now
        second = start_listener(**env)
        producer.join(60)
        wait_for(lambda: RecoveryItem.objects.filter(status="succeeded").count() == 120, seconds=60)
    finally:
        producer.join(60)
        if second is not None:
            stop(second)
    assert set(hits) == {webhook_id(item) for item in items}
    repeated = [key for key, count in hits.items() if count > 1]
    assert len(repeated) <= in_flight
    assert all(hits[key] == 2 for key in repeated)


@pytest.mark.processes
def test_two_listeners_share_the_work_and_deliver_each_event_once(httpserver):
    """Two delivery processes (two machines) woken by the same commits: the SKIP LOCKED
    claim gives each event to one of them."""
    hits: Counter = Counter()
    integration = counting_endpoint(httpserver, hits, delay=0.01)
    first = start_listener()
    second = start_listener()
    try:
        assert WorkerListener.objects.filter(connected=True).count() == 2
        items = [
            services.recovery_item_enqueue(
                integration=integration, event_type="e", payload={"n": n}
            )
            for n in range(100)
        ]
        wait_for(lambda: RecoveryItem.objects.filter(status="succeeded").count() == 100, seconds=60)
    finally:
        stop(first)
        stop(second)
    assert hits == Counter({webhook_id(item): 1 for item in items})


@override_settings(REDIS_URL="", DATABASE_LISTEN_URL="")
def test_the_wake_source_behind_transaction_pooling():
    direct = {"ENGINE": "django.db.backends.postgresql", "TRANSACTION_POOLING": False}
    pooled = {**direct, "TRANSACTION_POOLING": True}
    assert listeners.wake_source(direct) == "listen"
    # A LISTEN would not outlive the transaction: polling, unless Redis carries the wakes.
    assert listeners.wake_source(pooled) == "poll"
    with override_settings(REDIS_URL="redis://127.0.0.1:6379/0"):
        assert listeners.wake_source(pooled) == "redis"
    with override_settings(DATABASE_LISTEN_URL="postgres://direct@127.0.0.1:5432/opsconsole"):
        assert listeners.wake_source(pooled) == "listen"


def test_a_listener_that_stopped_reporting_is_degraded_and_none_at_all_is_ready(
    monitoring_client, admin_client
):
    def component() -> dict:
        body = monitoring_client.get("/api/v1/health/readyz").json()
        return body["components"]["integration_delivery_worker_listener"]

    # None runs: the task queue is woken instead, as before the listener existed.
    assert component()["status"] == "ready"
    assert component()["details"]["note"].startswith("none listening")
    now = timezone.now()
    WorkerListener.objects.create(
        owner="box-1:41",
        worker="integration_delivery_worker",
        wake_source="listen",
        connected=True,
        started_at=now - timedelta(hours=1),
        last_seen_at=now - timedelta(minutes=2),  # killed: it never said goodbye
    )
    WorkerListener.objects.create(
        owner="box-0:9",
        worker="integration_delivery_worker",
        wake_source="listen",
        connected=True,
        started_at=now - timedelta(hours=2),
        last_seen_at=now - timedelta(minutes=10),  # killed long ago: its work was taken over
    )
    assert component()["status"] == "degraded"
    assert "1 stopped reporting (box-1:41)" in component()["details"]["note"]
    assert "box-0:9" not in str(component())
    WorkerListener.objects.create(
        owner="box-2:7",
        worker="integration_delivery_worker",
        wake_source="listen",
        connected=True,
        started_at=now,
        last_seen_at=now,
        lag_ms=9000,
    )
    assert "due rows wait 9000 ms for a claim" in component()["details"]["note"]
    # The overview's attention row reads the component's own words.
    page = admin_client.get("/admin/").content.decode()
    assert "1 listening (listen), lag 9000 ms; 1 stopped reporting (box-1:41)" in page


@pytest.mark.system
def test_behind_transaction_pooling_without_a_listen_url_redis_carries_the_wake(
    httpserver, tmp_path, monkeypatch
):
    """No session of its own for LISTEN (PgBouncer) and no DATABASE_LISTEN_URL: the process
    subscribes to Redis, where the enqueueing request publishes after its commit."""
    from tests.scaleout.test_redis_clusters import RedisServer

    redis = RedisServer(tmp_path)
    redis.start()
    monkeypatch.setattr(listeners, "_redis_client", None)  # this test's server, not another
    hits: Counter = Counter()
    integration = counting_endpoint(httpserver, hits)
    listener = start_listener(
        LISTEN_POLL_MS="60000",
        REDIS_URL=redis.url,
        DATABASE_TRANSACTION_POOLING="true",
        DATABASE_LISTEN_URL="",
    )
    try:
        assert WorkerListener.objects.get().wake_source == "redis"
        with override_settings(REDIS_URL=redis.url):
            item = services.recovery_item_enqueue(
                integration=integration, event_type="e", payload={"n": 1}
            )
        wait_for(lambda: RecoveryItem.objects.get(pk=item.pk).status == "succeeded", seconds=20)
        assert hits == Counter({webhook_id(item): 1})
    finally:
        stop(listener)
        redis.stop()
        monkeypatch.setattr(listeners, "_redis_client", None)
