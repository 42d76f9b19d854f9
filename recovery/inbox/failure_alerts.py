"""The error categories (docs/runbooks/bookings-payments-notifications.md) as alert policies,
over every failure source in the registry: a payment failure pages the on-call (one critical
alert per failure), notification failures raise one batched alert per
NOTIFICATION_ALERT_WINDOW_MINUTES; booking and integration failures are worked from the failure
inbox and page nobody."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureSource
from opsconsole.models import Alert
from opsconsole.monitoring.alerts import alert_raise
from recovery.inbox.groups import open_rows

PAYMENT_ALERT = "payment-failure"
NOTIFICATION_ALERT = "notification-failures"
PAGE_AT_MOST = 200  # payment failures paged per run; the rest on the next run


def sources_of(category: str) -> list[FailureSource]:
    return [s for s in failure_sources.all_sources() if s.category == category]


def payment_failures_page() -> int:
    """A critical alert for each open payment failure that has none yet."""
    paged = 0
    for source in sources_of("payment"):
        rows = list(open_rows(source).order_by("-pk")[:PAGE_AT_MOST])
        if not rows:
            continue
        object_type = rows[0]._meta.label_lower
        alerted = set(
            Alert.objects.filter(
                kind=PAYMENT_ALERT,
                object_type=object_type,
                object_id__in=[str(row.pk) for row in rows],
            ).values_list("object_id", flat=True)
        )
        for row in rows:
            if str(row.pk) in alerted:
                continue
            entry = source.entry(row)
            with transaction.atomic():
                alert_raise(
                    kind=PAYMENT_ALERT,
                    severity=Alert.Severity.CRITICAL,
                    obj=row,
                    message=f"Payment failure ({source.name}): {entry.failure_code}",
                    details={"source": source.name, "error": entry.error[:300]},
                )
            paged += 1
    return paged


def notification_failures_batch() -> int:
    """One warning for the notification failures seen since the last one, at most one per
    window: 0 when the window is still running or nothing new failed."""
    window = timedelta(minutes=settings.NOTIFICATION_ALERT_WINDOW_MINUTES)
    now = timezone.now()
    last = Alert.objects.filter(kind=NOTIFICATION_ALERT).order_by("-created_at").first()
    if last is not None and last.created_at > now - window:
        return 0
    since = last.created_at if last is not None else now - window
    # Counted in SQL by each source's last-seen column: never a row loaded per failure.
    by_source: dict[str, int] = {}
    newest = None
    for source in sources_of("notification"):
        seen = source.last_seen_expression or F(source.first_seen_field)
        recent = open_rows(source).annotate(seen=seen).filter(seen__gte=since)
        count = recent.count()
        if count:
            by_source[source.name] = count
            newest = newest or recent.order_by("-pk").first()
    if newest is None:
        return 0
    total = sum(by_source.values())
    with transaction.atomic():
        alert_raise(
            kind=NOTIFICATION_ALERT,
            severity=Alert.Severity.WARNING,
            obj=newest,
            message=f"{total} notification failures since {since:%H:%M} UTC",
            details={"by_source": by_source, "since": since.isoformat()},
        )
    return total
