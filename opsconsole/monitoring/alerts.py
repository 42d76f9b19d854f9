"""Raise an alert for a human: a row in the admin plus an `alert_raised` log line to page on."""

from __future__ import annotations

from typing import Any

import structlog
from django.db import models, transaction
from django.utils import timezone

from opsconsole.evidence import audit
from opsconsole.http.context import current_request_id
from opsconsole.models import Alert

logger = structlog.get_logger(__name__)


def alert_raise(
    *,
    kind: str,
    severity: str,
    obj: models.Model,
    message: str,
    details: dict[str, Any] | None = None,
) -> Alert:
    alert = Alert.objects.create(
        kind=kind,
        severity=severity,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        message=message,
        details=details or {},
        request_id=current_request_id(),
    )
    # Logged after commit, so a rolled-back transaction does not page anyone.
    transaction.on_commit(
        lambda: logger.error(
            "alert_raised",
            alert_id=alert.pk,
            kind=kind,
            severity=severity,
            object_type=alert.object_type,
            object_id=alert.object_id,
        )
    )
    return alert


def _acknowledge(alert: Alert, *, event: str, actor: audit.Actor, reason: str) -> None:
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by = audit.actor_label(actor)
    alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    audit.record(
        event,
        obj=alert,
        before={"acknowledged": False},
        after={"acknowledged": True},
        actor=actor,
        reason=reason,
    )


@transaction.atomic
def alert_acknowledge(*, alert_id: int, actor: audit.Actor, reason: str) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert_id)
    if alert.acknowledged_at is None:
        _acknowledge(alert, event="platform.alert.acknowledged", actor=actor, reason=reason)
    return alert


def alerts_settle(*, obj: models.Model, reason: str) -> int:
    """The problem behind `obj`'s open alerts is gone (the refund completed, the failure was
    resolved): they are acknowledged for the operator, who would otherwise find them still
    open after the fix, and each one says why. Returns how many."""
    open_alerts = list(
        Alert.objects.select_for_update().filter(
            object_type=obj._meta.label_lower, object_id=str(obj.pk), acknowledged_at__isnull=True
        )
    )
    for alert in open_alerts:
        _acknowledge(alert, event="platform.alert.settled", actor="system", reason=reason)
    return len(open_alerts)
