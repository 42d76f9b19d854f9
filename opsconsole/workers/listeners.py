"""Always-running workers woken the moment their work is committed.

The code that makes work due calls `announce(worker)` inside its transaction: on PostgreSQL
that is a NOTIFY, which PostgreSQL delivers when (and only if) the transaction commits, and
sends once however many rows the transaction made due. With REDIS_URL set, the announcement
is also published on Redis after the commit.

A listening process (`manage.py run_worker NAME --listen`) keeps a `WakeListener` thread on
one wake source, chosen by `wake_source()`:

- `listen`: its own PostgreSQL connection, LISTENing on the worker's channel. Behind PgBouncer
  in transaction pooling mode a LISTEN does not survive the transaction, so it needs a direct
  connection (DATABASE_LISTEN_URL); without one it uses the next source.
- `redis`: a subscription to the worker's Redis channel (REDIS_URL).
- `poll`: neither; the worker looks for due rows every LISTEN_POLL_MS.

Whatever the source, the worker also looks every LISTEN_POLL_MS, so a lost wake (a
dropped connection, a Redis restart) delays work by at most that, and the worker's schedule
stays the safety net when no listener runs at all: the rows are the truth, a wake only says
"look now". A wake never makes a row due early: the claim takes only rows whose time has
come, so retries and Retry-After keep their wait.

Each listener reports itself in a WorkerListener row (source, connection, lag), which the
readiness check and the overview read; while one is alive, `listening(worker)` is true and
the coalesced django-q2 wakes (opsconsole.workers.wakes) are not sent."""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from opsconsole.models import WorkerListener
from opsconsole.monitoring.health import ComponentHealth

logger = structlog.get_logger(__name__)

# A listener whose row is older than this is gone (it refreshes it every REPORT_SECONDS).
LISTENER_STALE_SECONDS = 8.0
REPORT_SECONDS = 2.0
# A gone listener (killed: no goodbye) is reported this long, then its row is removed: long
# enough for a readiness poll to alert, and longer than the lease (WORKER_LEASE_SECONDS)
# after which another process delivers what it held.
LISTENER_FORGET_SECONDS = 300.0
# How long a sender trusts what it last read about live listeners.
LISTENING_CACHE_SECONDS = 2.0


def channel(worker: str) -> str:
    """The NOTIFY / Redis channel of `worker` (a PostgreSQL identifier: under 64 bytes)."""
    return f"opsconsole_wake_{worker}"[:63]


def announce(worker: str, *, notified: bool = False) -> None:
    """Say, inside the transaction that made `worker`'s rows due, that there is work: a
    NOTIFY sent with the commit (nothing on rollback), and a Redis message after it.
    `notified`: a statement of the transaction already selected pg_notify(channel(worker))."""
    if connection.vendor == "postgresql" and not notified:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [channel(worker)])
    if settings.REDIS_URL:
        transaction.on_commit(lambda: _publish(worker))


def _publish(worker: str) -> None:
    try:
        _redis().publish(channel(worker), b"")
    except Exception:  # the row is the truth; the listener's poll finds it
        logger.warning("listener_publish_failed", worker=worker, exc_info=True)


_redis_client: Any = None


def _redis() -> Any:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
    return _redis_client


_listening_seen: dict[str, tuple[float, bool]] = {}


def listening(worker: str) -> bool:
    """Whether a live listener runs `worker` (read at most every LISTENING_CACHE_SECONDS)."""
    now = time.monotonic()
    seen = _listening_seen.get(worker)
    if seen is not None and now - seen[0] < LISTENING_CACHE_SECONDS:
        return seen[1]
    try:
        alive = live_listeners(WorkerListener.objects.filter(worker=worker)).exists()
    except Exception:  # unknown: wake the task queue too, which is never wrong
        alive = False
    _listening_seen[worker] = (now, alive)
    return alive


def live_listeners(rows: QuerySet[WorkerListener]) -> QuerySet[WorkerListener]:
    """The listeners among `rows` that reported within LISTENER_STALE_SECONDS."""
    return rows.filter(last_seen_at__gte=timezone.now() - timedelta(seconds=LISTENER_STALE_SECONDS))


def wake_source(database: dict[str, Any] | None = None) -> str:
    """`listen`, `redis` or `poll` for `database` (the default one unless given): the
    module's docstring says which is chosen when."""
    database = settings.DATABASES["default"] if database is None else database
    if database["ENGINE"] == "django.db.backends.postgresql" and (
        settings.DATABASE_LISTEN_URL or not database.get("TRANSACTION_POOLING")
    ):
        return "listen"
    return "redis" if settings.REDIS_URL else "poll"


# What a woken drain finds on its queue: a wake, not an ended call.
WAKE = None


class Waker:
    """Hands wakes to the drains of the process: a `WAKE` on a subscribed queue, which the
    drain reads beside its ended calls, so a wake reaches it at once even while it waits for
    calls in flight."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.poll_seconds = settings.LISTEN_POLL_MS / 1000
        self.stopped = threading.Event()
        self._queues: list[queue.SimpleQueue[Any]] = []
        # Reentrant: stop() runs in a signal handler, maybe while this thread subscribes.
        self._lock = threading.RLock()
        self.wakes = 0
        self.lag_ms = 0

    def subscribe(self, inbox: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            self._queues.append(inbox)

    def unsubscribe(self, inbox: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            self._queues = [q for q in self._queues if q is not inbox]

    def wake(self) -> None:
        """Wake one drain, each in turn: one claim finds the new rows (a drain that claims
        a full batch claims again), and the others are not sent to claim nothing."""
        with self._lock:
            self.wakes += 1
            if self._queues:
                self._queues[self.wakes % len(self._queues)].put(WAKE)

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            for inbox in self._queues:
                inbox.put(WAKE)

    def note_lag(self, seconds: float) -> None:
        """A claimed row waited `seconds` past its due time (kept: the longest since the
        last report)."""
        self.lag_ms = max(self.lag_ms, int(seconds * 1000))


_active: dict[str, Waker] = {}


def active_waker(worker: str) -> Waker | None:
    """The waker of this process's listener for `worker` (None: not a listening process,
    so a drain ends when the queue runs dry)."""
    return _active.get(worker)


@contextmanager
def listener_of(worker: str) -> Iterator[Waker]:
    """Run the block as `worker`'s listener: its wake source in a thread, its report row
    refreshed, and its drains waiting for wakes instead of ending when the queue is dry."""
    waker = Waker(worker)
    listener = WakeListener(waker)
    _active[worker] = waker
    listener.start()
    try:
        yield waker
    finally:
        waker.stop()
        _active.pop(worker, None)
        listener.join(timeout=5)


class WakeListener(threading.Thread):
    """The thread that turns a wake source's messages into wakes, and reports the listener."""

    def __init__(self, waker: Waker) -> None:
        super().__init__(name=f"{waker.worker}-listener", daemon=True)
        self.waker = waker
        self.source = wake_source()
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.connected = False
        self.started_at = timezone.now()
        self.last_report = 0.0

    def run(self) -> None:
        logger.info("listener_started", worker=self.waker.worker, wake_source=self.source)
        try:
            while not self.waker.stopped.is_set():
                try:
                    if self.source == "listen":
                        self._listen_postgres()
                    elif self.source == "redis":
                        self._listen_redis()
                    else:
                        self._report_until_stopped()
                except Exception:
                    # Polling meanwhile; connect again after a pause.
                    self.connected = False
                    logger.warning("listener_disconnected", worker=self.waker.worker, exc_info=True)
                    self._report()
                    self.waker.stopped.wait(1.0)
        finally:
            self._forget()
            connections.close_all()
            logger.info("listener_stopped", worker=self.waker.worker, wake_source=self.source)

    def _listen_postgres(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(listen_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel(self.waker.worker))))
            self.connected = True
            self._report()
            self.waker.wake()  # what was committed while not listening
            while not self.waker.stopped.is_set():
                for _ in conn.notifies(timeout=REPORT_SECONDS, stop_after=1):
                    self.waker.wake()
                self._report_if_due()

    def _listen_redis(self) -> None:
        pubsub = _redis().pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(channel(self.waker.worker))
            self.connected = True
            self._report()
            self.waker.wake()
            while not self.waker.stopped.is_set():
                if pubsub.get_message(timeout=REPORT_SECONDS) is not None:
                    self.waker.wake()
                self._report_if_due()
        finally:
            pubsub.close()

    def _report_until_stopped(self) -> None:
        self.connected = True  # polling needs no connection of its own
        self._report()
        while not self.waker.stopped.wait(REPORT_SECONDS):
            self._report_if_due()

    def _report_if_due(self) -> None:
        if time.monotonic() - self.last_report >= REPORT_SECONDS:
            self._report()

    def _report(self) -> None:
        self.last_report = time.monotonic()
        lag, self.waker.lag_ms = self.waker.lag_ms, 0
        now = timezone.now()
        try:
            WorkerListener.objects.filter(
                worker=self.waker.worker,
                last_seen_at__lt=now - timedelta(seconds=LISTENER_FORGET_SECONDS),
            ).delete()
            WorkerListener.objects.update_or_create(
                owner=self.owner,
                defaults={
                    "worker": self.waker.worker,
                    "wake_source": self.source,
                    "connected": self.connected,
                    "started_at": self.started_at,
                    "last_seen_at": now,
                    "lag_ms": lag,
                    "wakes_total": self.waker.wakes,
                },
            )
        except Exception:
            logger.warning("listener_report_failed", worker=self.waker.worker, exc_info=True)
            connections.close_all()

    def _forget(self) -> None:
        try:
            WorkerListener.objects.filter(owner=self.owner).delete()
        except Exception:  # stale in LISTENER_STALE_SECONDS anyway
            logger.warning("listener_forget_failed", worker=self.waker.worker, exc_info=True)


def listen_conninfo() -> str:
    """DATABASE_LISTEN_URL, or the default database's own connection parameters."""
    from psycopg.conninfo import make_conninfo

    if settings.DATABASE_LISTEN_URL:
        return str(settings.DATABASE_LISTEN_URL)
    database: dict[str, Any] = settings.DATABASES["default"]
    params: dict[str, Any] = {
        "dbname": database["NAME"],
        "user": database["USER"],
        "password": database["PASSWORD"],
        "host": database["HOST"],
        "port": database["PORT"],
    }
    options: dict[str, Any] = database.get("OPTIONS", {})
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout"):
        if key in options:
            params[key] = options[key]
    return make_conninfo(**{key: str(value) for key, value in params.items() if value})


# A listener that last saw a due row wait longer than this is falling behind.
LAG_DEGRADED_MS = 5000


def listener_health(worker: str) -> ComponentHealth:
    """The readiness of `worker`'s listening processes (readyz and the overview): ready with
    none (the task queue is woken instead) or with every one connected and keeping up;
    degraded while one polls for a lost connection, runs late, or stopped reporting without
    saying goodbye (killed; for LISTENER_FORGET_SECONDS)."""
    now = timezone.now()
    rows = list(
        WorkerListener.objects.filter(
            worker=worker, last_seen_at__gte=now - timedelta(seconds=LISTENER_FORGET_SECONDS)
        ).order_by("owner")
    )
    live = [
        row for row in rows if (now - row.last_seen_at).total_seconds() <= LISTENER_STALE_SECONDS
    ]
    gone = [row for row in rows if row not in live]
    lag_ms = max((row.lag_ms for row in live), default=None)
    details: dict[str, Any] = {
        "listeners": [
            {
                "owner": row.owner,
                "wake_source": row.wake_source,
                "connected": row.connected,
                "lag_ms": row.lag_ms,
                "seen_seconds_ago": round((now - row.last_seen_at).total_seconds(), 1),
            }
            for row in live
        ],
        "lag_ms": lag_ms,
        "heartbeat_age_seconds": min(
            (round((now - row.last_seen_at).total_seconds(), 1) for row in live), default=None
        ),
    }
    problems = []
    if gone:
        problems.append(f"{len(gone)} stopped reporting ({', '.join(r.owner for r in gone)})")
    if any(not row.connected for row in live):
        problems.append("a listener lost its wake source and polls")
    if lag_ms is not None and lag_ms > LAG_DEGRADED_MS:
        problems.append(f"due rows wait {lag_ms} ms for a claim")
    if live:
        sources = ", ".join(sorted({row.wake_source for row in live}))
        summary = f"{len(live)} listening ({sources}), lag {lag_ms} ms"
    else:
        summary = "none listening: the task queue is woken instead, the schedule every minute"
    details["note"] = "; ".join([summary, *problems])
    return ComponentHealth("degraded" if problems else "ready", details)
