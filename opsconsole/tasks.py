"""django-q2 entry points for platform housekeeping, and the platform workers' earlier
entry points: every worker runs through `opsconsole.workers.run(name, triggered_by)`, and
these names stay because tasks queued before that still carry them."""

from __future__ import annotations

from opsconsole.http.idempotency import idempotency_key_purge_expired
from opsconsole.workers import run


def purge_expired_idempotency_keys() -> int:
    return idempotency_key_purge_expired()


def run_backup_drill() -> str:
    """The scheduled backup drill (docs/runbooks/backup-restore-drill.md); a failed drill fails
    the task, and its BackupDrillRun row turns the readyz component degraded."""
    from django.core.management import call_command

    call_command("backup_drill", "--triggered-by", "schedule")
    return "passed"


def run_incident_recorder(triggered_by: str = "schedule") -> dict[str, object]:
    return run("incident_recorder", triggered_by)


def run_queue_depth_sampler(triggered_by: str = "schedule") -> dict[str, object]:
    return run("queue_depth_sampler", triggered_by)


def run_registered_worker(name: str, triggered_by: str) -> dict[str, object]:
    return run(name, triggered_by)
