"""Component registry behind /api/v1/health/readyz.

Each component reports `ready`, `degraded` or `error` with details; the overall status is
the worst of them. Apps register their components in AppConfig.ready().
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from django.db import connection
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


def readiness() -> dict[str, Any]:
    components: dict[str, dict[str, Any]] = {}
    for name, check in _components.items():
        try:
            result = check()
        except Exception as exc:  # a failing probe is an `error` component, never a 500
            logger.warning("readiness_check_failed", component=name, error=str(exc))
            result = ComponentHealth("error", {"error": type(exc).__name__, "message": str(exc)})
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
