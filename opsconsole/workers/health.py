"""Each registered worker's readiness: switch, heartbeat age and failures in a row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from opsconsole.models import WorkerStatus, WorkerSwitch
from opsconsole.monitoring.health import ComponentHealth
from opsconsole.workers.switches import worker_enabled

# A worker whose last runs crashed this many times in a row is reported as `error`.
ERROR_AFTER_CONSECUTIVE_FAILURES = 3


def worker_health(name: str, *, schedule_minutes: int = 1) -> ComponentHealth:
    enabled = worker_enabled(name)
    status = WorkerStatus.objects.filter(name=name).first()
    now = timezone.now()
    details: dict[str, Any] = {
        # First: the overview's one-line summary reads what to fix before the figures.
        "last_error": status.last_error if status else "",
        "enabled": enabled,
        "heartbeat_age_seconds": round((now - status.last_heartbeat_at).total_seconds(), 1)
        if status and status.last_heartbeat_at
        else None,
        "consecutive_failures": status.consecutive_failures if status else 0,
        "last_heartbeat_at": status.last_heartbeat_at.isoformat()
        if status and status.last_heartbeat_at
        else None,
        "last_run_finished_at": status.last_run_finished_at.isoformat()
        if status and status.last_run_finished_at
        else None,
    }
    if not enabled:
        switch = WorkerSwitch.objects.filter(name=name).first()
        details["disabled_reason"] = switch.reason if switch else "disabled by settings"
        return ComponentHealth("degraded", details)
    if status and status.consecutive_failures >= ERROR_AFTER_CONSECUTIVE_FAILURES:
        return ComponentHealth("error", details)
    if status and status.consecutive_failures > 0:
        return ComponentHealth("degraded", details)
    # Stale once a heartbeat is older than WORKER_STALE_AFTER_SECONDS, or than one schedule
    # interval and a minute for a worker that runs less often (hourly, daily): a daily job
    # is not degraded five minutes after its run.
    stale_after = timedelta(
        seconds=max(settings.WORKER_STALE_AFTER_SECONDS, schedule_minutes * 60 + 60)
    )
    if (
        status
        and status.last_heartbeat_at
        and timezone.now() - status.last_heartbeat_at > stale_after
    ):
        details["stale"] = True
        return ComponentHealth("degraded", details)
    return ComponentHealth("ready", details)
