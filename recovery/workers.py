from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import ClassVar

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from opsconsole.access.authentication import expired_api_tokens_purge
from opsconsole.access.rate_counters import rate_counters_purge
from opsconsole.failures import failure_sources
from opsconsole.http.context import bound_context
from opsconsole.outbound.integration_status import ProbeResult
from opsconsole.workers import BatchWorker, register_worker
from opsconsole.workers.claims import RunContext, RunSummary
from opsconsole.workers.outcome_rollups import worker_outcomes_purge
from recovery import services
from recovery.inbox.bulk_actions import bulk_action_run, provider_pacing_lock
from recovery.inbox.dlq import (
    close_reviews_of_closed_failures,
    dead_rows,
    sweep_one,
    swept_sources,
)
from recovery.inbox.failure_alerts import notification_failures_batch, payment_failures_page
from recovery.integrations import circuits
from recovery.integrations.attention import failing_integrations
from recovery.integrations.delivery.drain import DeliveryDrain, DeliveryOutcome, claim_deliveries
from recovery.integrations.ingestion import ingested_events_purge
from recovery.models import BulkAction, Integration, ManualReviewItem, RecoveryItem
from recovery.reports.retention import TABLES, retention_redact_table


@register_worker
class IntegrationDeliveryWorker(BatchWorker):
    """Delivers pending, retrying and replayed items that are due, one HTTP call each, its
    calls in flight on the delivery loop (recovery.integrations.delivery.drain)."""

    name = "integration_delivery_worker"
    description = (
        "Integration deliveries: retries with backoff, DLQ on exhaustion"
        " (runbook: Integration retry and replay)"
    )
    drains = True
    listens = True
    concurrency_setting = "INTEGRATION_DELIVERY_CONCURRENCY"
    schedule_minutes = 1

    lease_model = RecoveryItem

    def item_seconds(self) -> float:
        # The outside call's timeout, plus writing its outcome.
        return float(settings.INTEGRATION_HTTP_TIMEOUT_SECONDS) + 3

    outcome_classes: ClassVar[dict[str, str]] = {
        "succeeded": "succeeded",
        "retry_scheduled": "retried",
        "failed": "failed",
        "dlq": "dead_lettered",
    }

    Outcome = DeliveryOutcome

    def drain(
        self, summary: RunSummary, run: RunContext, *, batch_limit: int, heartbeat: bool
    ) -> Exception | None:
        return DeliveryDrain(self, summary, run, batch_limit=batch_limit).drain(heartbeat=heartbeat)

    def begin_run(self, run: RunContext) -> None:
        # Integrations with a tripped circuit get only their probe or drain quota, per run
        # however many batches the run claims; helper processors claim only closed circuits.
        run.quotas = dict(circuits.probe_and_drain_quota())

    def claim(self, run: RunContext, *, limit: int) -> list[services.ClaimedDelivery]:
        return claim_deliveries(run, limit=limit, lease_seconds=self.lease_seconds)


def recovery_queue_metrics() -> Iterable[Metric]:
    depth = GaugeMetricFamily(
        "opsconsole_integration_recovery_items",
        "Recovery queue items by integration id and status (names: opsconsole_integration_info)",
        labels=["integration_id", "status"],
    )
    info = GaugeMetricFamily(
        "opsconsole_integration_info",
        "1 per integration: its current name and state by its id (join on integration_id)",
        labels=["integration_id", "integration", "enabled", "paused"],
    )
    id_of: dict[str, int] = {}
    for pk, name, enabled, paused in Integration.objects.values_list(
        "pk", "name", "enabled", "paused"
    ).order_by("pk"):
        id_of[name] = pk
        info.add_metric([str(pk), name, str(enabled).lower(), str(paused).lower()], 1)
    # From the minute's queue-depth sample (a scrape must not count ten million rows);
    # counted live only before the sampler's first run.
    from opsconsole.monitoring.metrics import registered_queues
    from opsconsole.monitoring.queue_depth import group_counts, latest_sample

    sample = latest_sample("integration_deliveries")
    if sample is not None:
        groups = sample.groups
    else:
        groups = group_counts(registered_queues()["integration_deliveries"])
    # The sample is grouped by name, as pages show it; the series are labelled by id (names
    # are unique and current, so a renamed integration keeps its series).
    for name, statuses in sorted(groups.items()):
        if name not in id_of:
            continue  # renamed or removed since the minute's sample: back at the next one
        for status, count in sorted(statuses.items()):
            depth.add_metric([str(id_of[name]), status], count)
    return [depth, info]


def integration_deliveries_probe() -> ProbeResult:
    """Red while an integration's deliveries all fail (behind its circuit, none stuck yet);
    amber while one is paused, draining, or has dead-lettered deliveries."""
    dlq = dict(
        RecoveryItem.objects.filter(status=RecoveryItem.Status.DLQ)
        .values_list("integration__name")
        .annotate(n=Count("id"))
    )
    paused = list(Integration.objects.filter(paused=True).values_list("name", flat=True))
    troubled = failing_integrations()
    failing = {f.name: f.text for f in troubled}
    details = {"paused": paused, "dlq": dlq, "failing": failing}
    if any(f.level == "error" for f in troubled):
        return ProbeResult("red", f"failing: {', '.join(failing)}", details)
    if paused or dlq or failing:
        return ProbeResult("amber", f"{len(paused)} paused, {sum(dlq.values())} in DLQ", details)
    return ProbeResult("green", "delivering", details)


@register_worker
class RetentionRedactor(BatchWorker):
    """Daily: customer data past the retention window is replaced by its hash."""

    name = "retention_redactor"
    description = "Redacts customer data older than RETENTION_DAYS (audit events are kept)"
    schedule_minutes = 60 * 24

    # Besides redaction, rows that only age: producers' event ids past the ingestion dedup
    # window, rate-limit counters of callers gone quiet, and expired API tokens.
    PURGES: ClassVar[dict[str, Callable[[], int]]] = {
        "ingested_events": ingested_events_purge,
        "rate_counters": rate_counters_purge,
        "expired_api_tokens": expired_api_tokens_purge,
        "worker_outcome_minutes": worker_outcomes_purge,
    }

    class Outcome(StrEnum):
        REDACTED = "redacted"
        PURGED = "purged"
        NOTHING_DUE = "nothing_due"

    def claim(self, run: RunContext, *, limit: int) -> list[str]:
        return [*TABLES, *self.PURGES][:limit]

    def process(self, item_id: str, run: RunContext) -> Outcome:
        if item_id in self.PURGES:
            return self.Outcome.PURGED if self.PURGES[item_id]() else self.Outcome.NOTHING_DUE
        if retention_redact_table(item_id):
            return self.Outcome.REDACTED
        return self.Outcome.NOTHING_DUE


@register_worker
class FailureAlerter(BatchWorker):
    """The error categories (docs/runbooks/bookings-payments-notifications.md): payment failures
    page, notification failures batch."""

    name = "failure_alerter"
    description = "Every minute: payment failures page the on-call; notification failures batch"
    schedule_minutes = 1

    class Outcome(StrEnum):
        PAGED = "paged"
        BATCHED = "batched"
        QUIET = "quiet"

    def claim(self, run: RunContext, *, limit: int) -> list[str]:
        return ["payment", "notification"][:limit]

    def process(self, item_id: str, run: RunContext) -> Outcome:
        if item_id == "payment":
            return self.Outcome.PAGED if payment_failures_page() else self.Outcome.QUIET
        return self.Outcome.BATCHED if notification_failures_batch() else self.Outcome.QUIET


@register_worker
class DlqSweeper(BatchWorker):
    name = "dlq_sweeper"
    description = "Every 15 minutes: old failures to manual review, recent transient ones retried"
    schedule_minutes = 15

    class Outcome(StrEnum):
        MANUAL_REVIEW = "manual_review"
        ALREADY_IN_REVIEW = "already_in_review"
        RETRIED = "retried"
        ALREADY_RETRIED = "already_retried"
        RETRY_REFUSED = "retry_refused"
        LEFT = "left"  # permanent and recent: the 24-hour rule takes it to a human
        GONE = "gone"

    def begin_run(self, run: RunContext) -> None:
        # Reviews whose failure an operator already replayed or resolved elsewhere close
        # first, so the review list holds only what is still failing.
        close_reviews_of_closed_failures()

    def claim(self, run: RunContext, *, limit: int) -> list[tuple[str, int]]:
        """Dead rows not already in open review, skipped in SQL: however many reviews are
        open, newer dead rows are still swept."""
        claimed: list[tuple[str, int]] = []
        for source in swept_sources():
            name = source.name
            in_review = ManualReviewItem.objects.filter(
                source=name, status=ManualReviewItem.Status.OPEN
            ).values("source_id")
            ids = (
                dead_rows(name)
                .exclude(pk__in=in_review)
                .order_by("pk")
                .values_list("pk", flat=True)[: limit * 4]
            )
            claimed += [(name, pk) for pk in ids]
        return claimed[: limit * 4]

    def process(self, item_id: tuple[str, int], run: RunContext) -> Outcome:
        name, pk = item_id
        row = dead_rows(name).filter(pk=pk).first()
        if row is None:
            return self.Outcome.GONE
        return self.Outcome(sweep_one(failure_sources.get(name), row, timezone.now()))


@register_worker
class BulkActionWorker(BatchWorker):
    name = "bulk_action_worker"
    description = "Failure inbox bulk replays, paced per provider"
    schedule_minutes = 1

    def __init__(self, *, max_seconds: float = 50.0, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.max_seconds = max_seconds

    class Outcome(StrEnum):
        ITEMS_DONE = "items_done"
        ITEMS_NONE = "items_none"
        PROVIDER_BUSY = "provider_busy"  # another worker process is pacing this provider

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        # The oldest running action per provider: actions for one provider run one after
        # another, so their paces do not add up.
        first_per_provider: dict[str, int] = {}
        for pk, provider in (
            BulkAction.objects.filter(status=BulkAction.Status.RUNNING)
            .order_by("id")
            .values_list("pk", "provider")
        ):
            first_per_provider.setdefault(provider or f"action-{pk}", pk)
        return list(first_per_provider.values())[:limit]

    def process(self, item_id: int, run: RunContext) -> Outcome:
        action = BulkAction.objects.only("provider", "request_id", "traceparent").get(pk=item_id)
        with (
            provider_pacing_lock(
                action.provider or f"action-{item_id}", hold_seconds=self.max_seconds + 60
            ) as acquired,
            bound_context(request_id=action.request_id, traceparent=action.traceparent),
        ):
            if not acquired:
                return self.Outcome.PROVIDER_BUSY
            done = bulk_action_run(action_id=item_id, max_seconds=self.max_seconds)
        return self.Outcome.ITEMS_DONE if done else self.Outcome.ITEMS_NONE


from recovery.reports import weekly_digest  # noqa: E402, F401  (registers the digest worker)
