"""Component registry behind /api/v1/health/readyz.

Each component reports `ready`, `degraded` or `error` with details; the overall status is
the worst of them. Apps register their components in AppConfig.ready().
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from django.db import connection, connections
from django.utils import timezone

logger = structlog.get_logger(__name__)

Status = Literal["ready", "degraded", "error"]
_SEVERITY: dict[str, int] = {"ready": 0, "degraded": 1, "error": 2}


@dataclass(frozen=True)
class ComponentHealth:
    status: Status
    details: dict[str, Any] = field(default_factory=dict)


ComponentCheck = Callable[[], ComponentHealth]
_components: dict[str, ComponentCheck] = {}


def register_component(name: str, check: ComponentCheck) -> None:
    _components[name] = check


def registered_components() -> list[str]:
    return list(_components)


def worst(statuses: list[Status]) -> Status:
    if not statuses:
        return "ready"
    return max(statuses, key=lambda s: _SEVERITY[s])


def check_database() -> ComponentHealth:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return ComponentHealth("ready", {"vendor": connection.vendor, "latency_ms": latency_ms})


# The whole of readyz answers within this, whatever a dependency does: an orchestrator probes
# every second or so and restarts what does not answer (docs/deployment.md).
READINESS_DEADLINE_SECONDS = 2.0
# Checks run here, side by side, each thread with its own database connection. Bounded: a
# database that stops answering mid-query holds a thread until it answers again, and then
# later probes say "timeout" rather than piling up threads.
_checks_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="readyz")


def _run_check(name: str, check: ComponentCheck) -> ComponentHealth:
    try:
        return check()
    except Exception as exc:  # a failing probe is an `error` component, never a 500
        logger.warning("readiness_check_failed", component=name, error=str(exc))
        return ComponentHealth("error", {"error": type(exc).__name__, "message": str(exc)})


def _in_own_thread(name: str, check: ComponentCheck) -> ComponentHealth:
    try:
        return _run_check(name, check)
    finally:
        connections.close_all()  # this thread's connections only


def _timed_out(deadline: float) -> ComponentHealth:
    return ComponentHealth("error", {"error": "timeout", "deadline_seconds": deadline})


def readiness(deadline: float = READINESS_DEADLINE_SECONDS) -> dict[str, Any]:
    """Every component's status within `deadline` seconds. The database is asked first; when
    it does not answer, nothing else is asked (every other check reads it) and the report
    is `error` at once. Then the rest run side by side; one still running at the deadline is
    an `error` (timeout).

    A caller inside a transaction (a test's, or a snapshot written with its incident) has
    its checks run in its own thread and connection, so they read what it has written."""
    started = time.monotonic()
    checks = dict(_components)
    components: dict[str, dict[str, Any]] = {}
    in_transaction = connection.in_atomic_block
    database = checks.pop("database", None)
    if database is not None:
        if in_transaction:
            result = _run_check("database", database)
        else:
            future = _checks_pool.submit(_in_own_thread, "database", database)
            try:
                result = future.result(timeout=deadline)
            except FutureTimeout:
                result = _timed_out(deadline)
        components["database"] = {"status": result.status, "details": result.details}
        if result.status == "error":
            skipped = {"checked": False, "reason": "the database did not answer"}
            for name in checks:
                components[name] = {"status": "degraded", "details": skipped}
            checks = {}
    if in_transaction:
        results = {name: _run_check(name, check) for name, check in checks.items()}
    else:
        futures = {
            name: _checks_pool.submit(_in_own_thread, name, check) for name, check in checks.items()
        }
        wait(futures.values(), timeout=max(0.0, deadline - (time.monotonic() - started)))
        results = {
            name: future.result() if future.done() else _timed_out(deadline)
            for name, future in futures.items()
        }
    for name, result in results.items():
        components[name] = {"status": result.status, "details": result.details}
    return {
        "status": worst([c["status"] for c in components.values()]),
        "checked_at": timezone.now().isoformat(),
        "components": components,
    }


def check_broker() -> ComponentHealth:
    """The django-q2 broker the schedules and wake-ups go through (ORM or Redis)."""
    from django_q.brokers import get_broker

    broker = get_broker()
    started = time.perf_counter()
    # Degraded, not error: without the broker no wake-up or schedule reaches the workers,
    # but nothing is lost (the rows are the truth) and the API keeps answering; once it is
    # back the schedules claim what became due.
    try:
        answered = broker.ping()
    except Exception as exc:
        answered, reason = False, f"{type(exc).__name__}: {str(exc)[:200]}"
    else:
        reason = "no answer to ping"
    if not answered:
        kind = type(broker).__name__.lower()
        return ComponentHealth("degraded", {"type": kind, "ping": False, "error": reason})
    details = {
        "type": type(broker).__name__.lower(),
        "queue_size": broker.queue_size(),
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    return ComponentHealth("ready", details)


def register_builtin_components() -> None:
    register_component("database", check_database)
    register_component("broker", check_broker)
    register_component("backup_drill", check_backup_drill)


def check_backup_drill() -> ComponentHealth:
    """The last backup drill (docs/runbooks/backup-restore-drill.md): degraded when it failed or
    passed too long ago."""
    from django.conf import settings

    from opsconsole.models import BackupDrillRun

    last = BackupDrillRun.objects.exclude(status=BackupDrillRun.Status.RUNNING).first()
    if last is None:
        return ComponentHealth("ready", {"last_run": None, "note": "no drill has run yet"})
    age_days = (timezone.now() - last.started_at).days
    details = {
        "last_run": last.started_at.isoformat(),
        "result": last.status,
        "copied_to": last.copied_to,
        "smoke_checks": last.smoke_checks,
        "age_days": age_days,
    }
    if last.status == BackupDrillRun.Status.FAILED:
        return ComponentHealth("degraded", {**details, "detail": last.detail[:300]})
    if age_days > int(str(settings.BACKUP_DRILL["max_age_days"])):
        return ComponentHealth("degraded", {**details, "detail": "the last drill is too old"})
    return ComponentHealth("ready", details)
