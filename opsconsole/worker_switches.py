"""Worker kill switches: a WorkerSwitch row overrides the settings default; changes are audited."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from opsconsole import audit
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
