"""The scheduler metrics for every registered worker (docs/runbooks/incident-response.md)."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from opsconsole.models import WorkerStatus
from opsconsole.workers.registry import registered_workers
from opsconsole.workers.switches import worker_enabled

# The alerts read `smplat_catalog_scheduler_*`: the scheduler that wakes every worker.
SCHEDULER_METRIC_PREFIX = "smplat_catalog_scheduler"


def worker_metrics() -> Iterable[Metric]:
    """Per-worker gauges and counters for /metrics, read from the rows every process writes."""
    prefix = SCHEDULER_METRIC_PREFIX
    labels = ["worker"]
    enabled = GaugeMetricFamily(
        f"{prefix}_enabled",
        "1 when the worker runs (its kill switch is off); 0 when an operator switched it off",
        labels=labels,
    )
    failures = GaugeMetricFamily(
        f"{prefix}_consecutive_failures", "Runs in a row that failed", labels=labels
    )
    heartbeat = GaugeMetricFamily(
        f"{prefix}_last_heartbeat_timestamp_seconds", "Last heartbeat", labels=labels
    )
    heartbeat_age = GaugeMetricFamily(
        f"{prefix}_heartbeat_age_seconds", "Seconds since the last heartbeat", labels=labels
    )
    runs = CounterMetricFamily(f"{prefix}_runs", "Runs finished", labels=labels)
    items = CounterMetricFamily(
        f"{prefix}_items_processed", "Items claimed and processed (attempts)", labels=labels
    )
    outcomes = CounterMetricFamily(
        f"{prefix}_outcomes", "Item outcomes per worker", labels=["worker", "outcome"]
    )
    now = timezone.now()
    statuses = {s.name: s for s in WorkerStatus.objects.all()}
    for name in sorted(set(registered_workers()) | set(statuses)):
        status = statuses.get(name)
        enabled.add_metric([name], 1 if worker_enabled(name) else 0)
        failures.add_metric([name], status.consecutive_failures if status else 0)
        beat = status.last_heartbeat_at if status else None
        heartbeat.add_metric([name], beat.timestamp() if beat else 0)
        heartbeat_age.add_metric([name], (now - beat).total_seconds() if beat else -1)
        runs.add_metric([name], status.runs_total if status else 0)
        items.add_metric([name], status.items_processed_total if status else 0)
        for outcome, count in sorted(((status.outcome_totals if status else None) or {}).items()):
            outcomes.add_metric([name, outcome], count)
    return [enabled, failures, heartbeat, heartbeat_age, runs, items, outcomes]
