"""django-q2 entry points for platform housekeeping."""

from __future__ import annotations

from opsconsole.idempotency import idempotency_key_purge_expired


def purge_expired_idempotency_keys() -> int:
    return idempotency_key_purge_expired()


def run_incident_recorder(triggered_by: str = "schedule") -> dict[str, object]:
    from opsconsole.incident_recorder import IncidentRecorder

    return IncidentRecorder().run_once(triggered_by=triggered_by).as_dict()


def run_backup_drill() -> str:
    """The scheduled backup drill (docs/runbooks/backup-restore-drill.md); a failed drill fails
    the task, and its BackupDrillRun row turns the readyz component degraded."""
    from django.core.management import call_command

    call_command("backup_drill", "--triggered-by", "schedule")
    return "passed"


def run_queue_depth_sampler(triggered_by: str = "schedule") -> dict[str, object]:
    from opsconsole.queue_depth import QueueDepthSampler

    return QueueDepthSampler().run_once(triggered_by=triggered_by).as_dict()


def run_registered_worker(name: str, triggered_by: str) -> dict[str, object]:
    """A worker run an operator asked for from its admin page ("Run now")."""
    from opsconsole.worker_registry import registered_workers

    return registered_workers()[name]().run_once(triggered_by=triggered_by).as_dict()
