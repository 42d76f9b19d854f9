"""Scale-out on the engines the console already uses: django-q2 on Redis (Debian's
redis-server) with three qcluster processes of one cluster name, as three worker machines
would run them, on one PostgreSQL.

- 10,000 deliveries with one cluster SIGKILLed midway (its whole process group, as a machine
  dies): every item is recorded succeeded exactly once, and the endpoint sees no more
  repeated webhook ids than the killed cluster had calls in flight.
- Redis stopped for 60 seconds: nothing is lost, readyz shows the broker degraded within 30
  seconds, API requests still answer within 2 seconds, and the backlog drains once Redis is
  back (through the clusters' own schedules).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q
from knox.models import AuthToken
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from recovery import services
from recovery.integrations.ingestion import events_ingest
from recovery.models import DeliveryAttempt, RecoveryItem
from tests.opsconsole.factories import UserFactory

ROOT = Path(settings.BASE_DIR)
PATH = "/hooks/partner"
Q_WORKERS = 1  # task processes per cluster (each a delivery task with its calls in flight)
IN_FLIGHT = 16  # INTEGRATION_DELIVERY_IN_FLIGHT: a cluster's calls in flight per task
LEASE_SECONDS = 15


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


class RedisServer:
    """Debian's redis-server on a free loopback port, stopped and started at will."""

    def __init__(self, log_dir: Path) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            pytest.fail("redis-server is missing: scripts/ensure-redis.sh installs it")
        self.binary, self.port, self.log_dir = binary, free_port(), log_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        no_persistence = ["--save", "", "--appendonly", "no", "--dir", str(self.log_dir)]
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", *no_persistence]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class Endpoint:
    """The partner: answers every delivery, counting each webhook-id it sees."""

    def __init__(self) -> None:
        self.server = HTTPServer(threaded=True)
        self.lock = threading.Lock()
        self.seen: Counter = Counter()
        self.server.expect_request(PATH).respond_with_handler(self.handle)
        self.server.start()

    def handle(self, request: Request) -> Response:
        time.sleep(0.005)
        with self.lock:
            self.seen[request.headers["webhook-id"]] += 1
        return Response("{}", content_type="application/json")

    @property
    def calls(self) -> int:
        with self.lock:
            return sum(self.seen.values())

    def repeated(self) -> int:
        with self.lock:
            return sum(count - 1 for count in self.seen.values())


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Deployment:
    """Worker clusters (and a web process) as separate machines would run them: one
    settings environment, Redis as the broker, one PostgreSQL."""

    def __init__(self, redis: RedisServer, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis.url,
            "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
            "Q_WORKERS": str(Q_WORKERS),
            "INTEGRATION_DELIVERY_IN_FLIGHT": str(IN_FLIGHT),
            "WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
            "WORKER_DRAIN_SECONDS": "20",
            "LOG_LEVEL": "WARNING",
        }
        self.clusters: list[subprocess.Popen] = []
        self.web: subprocess.Popen | None = None
        self.web_port = 0

    def start_cluster(self) -> subprocess.Popen:
        log = open(self.log_dir / f"qcluster-{len(self.clusters)}.log", "w")  # noqa: SIM115
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed together, as a machine
        )
        self.clusters.append(cluster)
        return cluster

    def start_web(self) -> str:
        self.web_port = free_port()
        log = open(self.log_dir / "web.log", "w")  # noqa: SIM115
        bind = f"127.0.0.1:{self.web_port}"
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "opsconsole.wsgi", "--workers", "2", "--bind", bind],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.web_port)
        return f"http://127.0.0.1:{self.web_port}"

    def wake_delivery(self, tasks: int) -> None:
        """Queue delivery tasks in Redis, as the business's wake-ups do."""
        script = (
            "import django; django.setup();"
            "from django_q.tasks import async_task;"
            f"[async_task('recovery.tasks.run_integration_delivery_worker', 'test')"
            f" for _ in range({tasks})]"
        )
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=self.env, check=True)

    def kill(self, cluster: subprocess.Popen) -> None:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(10)

    def stop(self) -> None:
        """After the test has checked what it proves: each machine asked to stop, then
        stopped (a graceful cluster waits out its workers' tasks, which proves nothing here
        and cost the suite 40 s a test)."""
        processes = [*self.clusters, *([self.web] if self.web else [])]
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    partner = Endpoint()
    yield partner
    partner.server.clear()
    partner.server.stop()


@pytest.fixture
def deployment(redis, tmp_path) -> Iterator[Deployment]:
    running = Deployment(redis, tmp_path)
    yield running
    running.stop()


def queue_events(integration_id: int, count: int, *, first: int = 0) -> None:
    producer = UserFactory(username=f"producer-{first}", groups=["Event producer"])
    for start in range(first, first + count, 100):
        events = [
            {"event_type": "booking.confirmed", "event_id": f"evt-{n}", "payload": {"n": n}}
            for n in range(start, min(start + 100, first + count))
        ]
        events_ingest(integration_id=integration_id, events=events, actor=producer)


def succeeded_once(integration_id: int) -> tuple[int, int]:
    """(items succeeded, items whose success was recorded other than exactly once)."""
    items = RecoveryItem.objects.filter(integration_id=integration_id)
    succeeded = items.filter(status="succeeded").count()
    recorded = (
        DeliveryAttempt.objects.filter(item__integration_id=integration_id)
        .values("item")
        .annotate(successes=Count("id", filter=Q(outcome="succeeded")))
        .exclude(successes=1)
        .count()
    )
    return succeeded, recorded


def wait_until(condition, seconds: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def partner_at(endpoint: Endpoint) -> int:
    integration = services.integration_create(
        name="partner", endpoint_url=endpoint.server.url_for(PATH), actor="test"
    )
    # Its own limits out of the way: the clusters' in-flight windows are what is measured.
    integration.max_in_flight, integration.rate_per_second = 256, 10_000
    integration.save(update_fields=["max_in_flight", "rate_per_second"])
    return integration.pk


@pytest.mark.timeout(420)
@pytest.mark.django_db(transaction=True)
def test_three_clusters_share_the_queue_and_a_killed_one_repeats_only_its_calls_in_flight(
    deployment, endpoint
):
    integration_id = partner_at(endpoint)
    queue_events(integration_id, 10_000)
    clusters = [deployment.start_cluster() for _ in range(3)]
    # Each cluster is up (its sentinel, monitor, pusher and worker) before work is queued,
    # or the first one up would take every task.
    assert wait_until(lambda: all(_processes_in(c.pid) >= 4 + Q_WORKERS for c in clusters), 60)
    deployment.wake_delivery(tasks=6)
    seen_groups: set[int] = set()
    last_wake = time.monotonic()

    # Midway, with every cluster delivering, one machine dies.
    def all_three_delivering() -> bool:
        nonlocal last_wake
        owners = RecoveryItem.objects.filter(integration_id=integration_id).exclude(lease_owner="")
        pids = {int(owner.split(":")[2]) for owner in owners.values_list("lease_owner", flat=True)}
        seen_groups.update(os.getpgid(pid) for pid in pids if _alive(pid))
        if {cluster.pid for cluster in clusters} <= seen_groups:
            return True
        if time.monotonic() - last_wake > 2:  # a cluster without a task yet gets one
            deployment.wake_delivery(tasks=3)
            last_wake = time.monotonic()
        return False

    assert wait_until(all_three_delivering, 90, step=0.1), "the clusters never all delivered"
    assert wait_until(lambda: endpoint.calls >= 3_000, 120, step=0.1)
    doomed = clusters[0]
    deployment.kill(doomed)
    calls_at_kill = endpoint.calls
    assert calls_at_kill < 10_000, "the kill came too late to prove anything"

    # The two left drain the rest, the dead one's items once their leases have expired
    # (wake-ups stand in for the schedules' minute ticks).
    def all_delivered() -> bool:
        if succeeded_once(integration_id)[0] == 10_000:
            return True
        deployment.wake_delivery(tasks=2)
        return False

    assert wait_until(all_delivered, 240, step=5), succeeded_once(integration_id)
    succeeded, not_once = succeeded_once(integration_id)
    assert (succeeded, not_once) == (10_000, 0)
    assert len(endpoint.seen) == 10_000
    # Only calls the killed cluster had in flight were made again.
    print(f"killed at {calls_at_kill} calls; webhook ids repeated: {endpoint.repeated()}")
    assert endpoint.repeated() <= Q_WORKERS * IN_FLIGHT
    assert all(cluster.poll() is None for cluster in clusters[1:])


def _processes_in(group: int) -> int:
    """How many processes run in process group `group` (a cluster and its children)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += os.getpgid(int(entry.name)) == group
            except OSError:
                continue
    return count


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


@pytest.mark.timeout(420)
@pytest.mark.django_db(transaction=True)
def test_sixty_seconds_without_redis_lose_nothing_and_the_backlog_drains_after(
    deployment, endpoint, redis
):
    integration_id = partner_at(endpoint)
    call_command("setup_schedules", stdout=open(os.devnull, "w"))  # noqa: SIM115
    for _ in range(2):
        deployment.start_cluster()
    base = deployment.start_web()
    producer = UserFactory(username="outside-producer", groups=["Event producer"])
    _, key = AuthToken.objects.create(user=producer)
    api = httpx.Client(base_url=base, headers={"Authorization": f"Token {key}"}, timeout=10)
    batch_url = f"/platform/integrations/{integration_id}/events/batch"

    def send(first: int) -> float:
        events = [
            {"event_type": "booking.confirmed", "event_id": f"evt-{n}", "payload": {"n": n}}
            for n in range(first, first + 100)
        ]
        started = time.monotonic()
        response = api.post(batch_url, json={"events": events})
        assert response.status_code == 202, response.text[:300]
        return time.monotonic() - started

    def readyz() -> tuple[str, float]:
        started = time.monotonic()
        response = api.get("/api/v1/health/readyz")
        return response.json()["components"]["broker"]["status"], time.monotonic() - started

    # Working: the ingestion's wake-ups reach the clusters through Redis.
    for first in range(0, 500, 100):
        send(first)
    assert wait_until(lambda: succeeded_once(integration_id)[0] == 500, 60)
    assert readyz()[0] == "ready"

    redis.stop()
    down_at = time.monotonic()
    assert wait_until(lambda: readyz()[0] == "degraded", 30, step=1)
    degraded_after = time.monotonic() - down_at
    assert degraded_after <= 30
    answers = [send(first) for first in range(500, 1500, 100)]
    answers += [readyz()[1] for _ in range(3)]
    assert max(answers) < 2, answers
    print(f"degraded after {degraded_after:.1f} s; slowest answer {max(answers):.3f} s")
    time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
    # Nothing was lost: every event of the outage is queued, waiting.
    items = RecoveryItem.objects.filter(integration_id=integration_id)
    assert items.count() == 1500
    assert items.filter(status="succeeded").count() < 1500
    assert all(cluster.poll() is None for cluster in deployment.clusters)

    redis.start()  # empty: whatever was queued in it is gone; the rows are not
    back_at = time.monotonic()
    assert wait_until(lambda: readyz()[0] == "ready", 30, step=1)
    assert wait_until(lambda: succeeded_once(integration_id)[0] == 1500, 150, step=2), (
        succeeded_once(integration_id)
    )
    print(f"the backlog drained {time.monotonic() - back_at:.0f} s after Redis was back")
    assert succeeded_once(integration_id) == (1500, 0)
    assert len(endpoint.seen) == 1500 and endpoint.repeated() == 0
