"""Worker kill switches: a WorkerSwitch row overrides the settings default; changes are audited."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from opsconsole.evidence import audit
from opsconsole.http.errors import Conflict, NotFound
from opsconsole.models import WorkerSwitch


def worker_enabled(name: str) -> bool:
    switch = WorkerSwitch.objects.filter(name=name).values_list("enabled", flat=True).first()
    if switch is not None:
        return switch
    return settings.WORKER_DEFAULTS_ENABLED.get(name, True)


@transaction.atomic
def worker_switch_set(*, name: str, enabled: bool, actor: audit.Actor, reason: str) -> WorkerSwitch:
    """Flip a worker's kill switch; audited as platform.worker.enabled/disabled."""
    before_enabled = worker_enabled(name)
    switch, _ = WorkerSwitch.objects.update_or_create(
        name=name,
        defaults={"enabled": enabled, "reason": reason, "changed_by": audit.actor_label(actor)},
    )
    audit.record(
        f"platform.worker.{'enabled' if enabled else 'disabled'}",
        object_type="platform.worker",
        object_id=name,
        before={"enabled": before_enabled},
        after={"enabled": enabled},
        actor=actor,
        reason=reason,
    )
    return switch


@transaction.atomic
def worker_run_now(*, name: str, actor: audit.Actor, reason: str) -> None:
    """Run a worker now, as its schedule would (kill switch, leases, run record), from the
    task queue once this commits; audited as platform.worker.run_requested."""
    from opsconsole.workers.registry import registered_workers
    from opsconsole.workers.wakes import run_after_commit

    if name not in registered_workers():
        raise NotFound(f"No worker named {name}.", code="OPS-404-WORKER-NOT-FOUND")
    if not worker_enabled(name):
        raise Conflict(
            f"{name} is disabled by its kill switch; enable it first.",
            code="OPS-409-WORKER-DISABLED",
        )
    audit.record(
        "platform.worker.run_requested",
        object_type="platform.worker",
        object_id=name,
        actor=actor,
        reason=reason,
    )
    run_after_commit("opsconsole.workers.run", name, operator_trigger(actor))


def operator_trigger(actor: audit.Actor) -> str:
    """How a run an operator asked for names its trigger (WorkerStatus.last_triggered_by)."""
    return f"operator:{audit.actor_label(actor)}"[:50]
