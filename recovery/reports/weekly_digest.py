"""The weekly operations digest (docs/runbooks/incident-response.md): one email a week to
the operations address with the week's failures by group, the recoveries, the incidents,
the dead-letter queues' age and the slowest partners, rendered from a template and sent
through the email provider. The scheduled run checks hourly and sends the last complete ISO
week (Monday 00:00 UTC to Monday) once; `manage.py send_weekly_digest --week 2026-W47`
builds and sends any week again."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from notifications.services import communication_send
from opsconsole.evidence import audit
from opsconsole.failures import failure_sources
from opsconsole.http.errors import InvalidInput
from opsconsole.models import AuditEvent, Incident
from opsconsole.workers import BatchWorker, register_worker
from opsconsole.workers.claims import RunContext
from recovery.inbox.dlq import dead_rows, swept_sources
from recovery.inbox.groups import open_rows
from recovery.integrations.stats import DeliveryStats
from recovery.models import DeliveryRollup, FailureResolution, Integration, WeeklyDigest

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
SLOWEST_PARTNERS = 5


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """[Monday 00:00 UTC, next Monday) of an ISO week such as 2026-W47."""
    match = WEEK.match(week)
    try:
        if match is None:
            raise ValueError(week)
        start = datetime.fromisocalendar(int(match[1]), int(match[2]), 1).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidInput(
            f"{week!r} is not an ISO week.", details={"week": "Like 2026-W47."}
        ) from exc
    return start, start + timedelta(days=7)


def week_of(moment: datetime) -> str:
    year, number, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{number:02d}"


def last_complete_week(now: datetime | None = None) -> str:
    return week_of((now or timezone.now()) - timedelta(days=7))


def _failures_by_group(start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    """Failures first seen in the week and still open, by category and source."""
    groups: dict[str, dict[str, int]] = {}
    for source in failure_sources.all_sources():
        seen = F(source.first_seen_field)
        count = open_rows(source).annotate(seen=seen).filter(seen__gte=start, seen__lt=end).count()
        if count:
            groups.setdefault(source.category or "other", {})[source.name] = count
    return groups


def _recoveries(start: datetime, end: datetime) -> dict[str, Any]:
    resolved = dict(
        FailureResolution.objects.filter(created_at__gte=start, created_at__lt=end)
        .values_list("source")
        .annotate(count=Count("id"))
        .values_list("source", "count")
    )
    replays = dict(
        AuditEvent.objects.filter(
            created_at__gte=start, created_at__lt=end, event__contains="replay"
        )
        .values_list("event")
        .annotate(count=Count("id"))
        .values_list("event", "count")
    )
    return {"resolved_by_source": resolved, "replays_by_event": replays}


def _incidents(start: datetime, end: datetime) -> list[dict[str, Any]]:
    touched = Incident.objects.filter(opened_at__lt=end).exclude(resolved_at__lt=start)
    return [
        {
            "id": incident.pk,
            "title": incident.title,
            "severity": incident.severity,
            "status": incident.status,
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        }
        for incident in touched.order_by("opened_at")[:50]
    ]


def _dlq_age(now: datetime) -> dict[str, dict[str, Any]]:
    """Each swept source's dead-lettered rows now: how many, and the oldest's age in hours."""
    ages: dict[str, dict[str, Any]] = {}
    for source in swept_sources():
        rows = dead_rows(source.name)
        count = rows.count()
        if not count:
            continue
        oldest = rows.order_by(source.first_seen_field).first()
        hours = (now - source.first_seen(oldest)).total_seconds() / 3600
        ages[source.name] = {"dead": count, "oldest_age_hours": round(hours, 1)}
    return ages


def _slowest_partners(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The integrations with the slowest p95 over the week, from the minute rollups."""
    counters = (*DeliveryRollup.OUTCOMES, *DeliveryRollup.BUCKETS)
    sums = (
        DeliveryRollup.objects.filter(minute__gte=start, minute__lt=end)
        .values("integration_id")
        .annotate(**{name: Sum(name) for name in counters})
    )
    names = dict(Integration.objects.values_list("pk", "name"))
    ranked = []
    for row in cast(list[dict[str, Any]], list(sums)):
        stats = DeliveryStats(since=start, totals={n: int(row[n] or 0) for n in counters})
        if not stats.attempts:
            continue
        # Slowest first: by the bucket the p95 falls in, then the p50's.
        p95, p50 = stats.percentile_bucket(0.95), stats.percentile_bucket(0.5)
        rank = (-1 if p95 is None else p95, -1 if p50 is None else p50)
        ranked.append(
            (
                rank,
                {
                    "integration": names.get(row["integration_id"], str(row["integration_id"])),
                    "attempts": stats.attempts,
                    "success_rate": stats.success_rate,
                    "latency_p50_ms": stats.percentile_ms(0.5),
                    "latency_p95_ms": stats.percentile_ms(0.95),
                },
            )
        )
    ranked.sort(key=lambda entry: entry[0], reverse=True)
    return [entry[1] for entry in ranked[:SLOWEST_PARTNERS]]


def weekly_digest_build(week: str) -> dict[str, Any]:
    start, end = week_bounds(week)
    failures = _failures_by_group(start, end)
    return {
        "week": week,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "failures_by_group": failures,
        "failures_total": sum(sum(group.values()) for group in failures.values()),
        "recoveries": _recoveries(start, end),
        "incidents": _incidents(start, end),
        "dlq_age": _dlq_age(timezone.now()),
        "slowest_partners": _slowest_partners(start, end),
    }


class DigestOutcome(StrEnum):
    SENT = "sent"
    SEND_FAILED = "send_failed"
    NOT_CONFIGURED = "not_configured"


def weekly_digest_send(
    *, week: str, triggered_by: str, again: bool = False, actor: audit.Actor = None
) -> DigestOutcome:
    """Build and send `week`'s digest. A week already sent is sent again only with `again`
    (an operator's re-run, audited); the provider gets a key per send, so a retried task
    never sends twice and a re-run is a new message."""
    start, end = week_bounds(week)
    recipient = settings.OPERATIONS_DIGEST_EMAIL
    digest, _ = WeeklyDigest.objects.get_or_create(
        week=week, defaults={"period_start": start, "period_end": end}
    )
    if digest.sends and not again:
        return DigestOutcome.SENT
    if not recipient:
        digest.last_failure = "OPERATIONS_DIGEST_EMAIL is not set"
        digest.save(update_fields=["last_failure"])
        return DigestOutcome.NOT_CONFIGURED
    summary = weekly_digest_build(week)
    log = communication_send(
        channel="email",
        to=recipient,
        template="weekly_digest",
        context=summary,
        subject_type="weekly_digest",
        subject_id=week,
        triggered_by=triggered_by,
        idempotency_key=f"weekly-digest:{week}:{digest.sends + 1}",
    )
    with transaction.atomic():
        digest = WeeklyDigest.objects.select_for_update().get(pk=digest.pk)
        digest.summary, digest.recipient = summary, recipient
        if log.status == "sent":
            digest.sends += 1
            digest.last_sent_at, digest.last_failure = timezone.now(), ""
        else:
            digest.last_failure = f"{log.failure_code}: {log.failure_detail}"[:1000]
        digest.save()
        if again:
            audit.record(
                "platform.weekly_digest.resent",
                obj=digest,
                actor=actor or triggered_by,
                after={"week": week, "status": log.status, "recipient": recipient},
            )
    return DigestOutcome.SENT if log.status == "sent" else DigestOutcome.SEND_FAILED


@register_worker
class WeeklyDigestWorker(BatchWorker):
    # The incident guide restarts it from readyz by this name.
    name = "weekly_digest_scheduler"
    description = "Weekly: the operations digest email for the last complete ISO week"
    # Checked hourly and sent once: a missed tick catches up within the hour.
    schedule_minutes = 60
    Outcome = DigestOutcome

    def claim(self, run: RunContext, *, limit: int) -> list[str]:
        week = last_complete_week()
        sent = WeeklyDigest.objects.filter(week=week, sends__gt=0).exists()
        return [] if sent else [week]

    def process(self, item_id: str, run: RunContext) -> DigestOutcome:
        return weekly_digest_send(week=item_id, triggered_by=run.triggered_by)
