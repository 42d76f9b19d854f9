"""Queue depth, sampled every minute (the overview's counts and charts, issue: operator views
at ten million rows). A sample counts each registered queue's rows per status: exactly for
a table under ESTIMATE_ABOVE_ROWS, from the planner's statistics above it (the status
column's most common values times the table's row estimate), so the sampler costs the same
at 10M rows as at 10k. Samples are kept KEEP_DAYS."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.db import connection
from django.db.models import Count, Model
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from opsconsole.db.model_fields import concrete_field
from opsconsole.models import QueueDepthSample
from opsconsole.monitoring.metrics import Queue, registered_queues
from opsconsole.workers import PeriodicWorker, register_worker
from opsconsole.workers.claims import RunContext

ESTIMATE_ABOVE_ROWS = 200_000
KEEP_DAYS = 7


@dataclass(frozen=True)
class Reading:
    """What a sampled source other than a queue table reports for one minute."""

    counts: dict[str, int]
    estimated: bool = False
    groups: dict[str, dict[str, int]] = field(default_factory=dict)


_sampled: dict[str, Callable[[], Reading]] = {}


def register_sampled(name: str, read: Callable[[], Reading]) -> None:
    """Sample `read` every minute as `name`, next to the queues (the failure inbox's groups,
    whose sparklines then read samples, not the failures)."""
    _sampled[name] = read


def status_counts(model: type[Model]) -> tuple[dict[str, int], bool]:
    """Rows per status, and whether the figures are the planner's estimate."""
    if connection.vendor == "postgresql":
        estimate = _planner_estimate(model._meta.db_table)
        if estimate is not None:
            return estimate, True
    rows = model._default_manager.order_by().values_list("status").annotate(n=Count("pk"))
    return {str(status): count for status, count in rows}, False


def _planner_estimate(table: str) -> dict[str, int] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.reltuples, s.most_common_vals::text::text[], s.most_common_freqs "
            "FROM pg_class c LEFT JOIN pg_stats s ON s.tablename = c.relname "
            "AND s.attname = 'status' AND s.schemaname = current_schema() "
            "WHERE c.oid = to_regclass(%s)",
            [table],
        )
        row = cursor.fetchone()
    if row is None or row[0] < ESTIMATE_ABOVE_ROWS or not row[1]:
        return None
    rows, values, freqs = row
    return {value: round(rows * freq) for value, freq in zip(values, freqs, strict=True)}


def queue_depth_sample(now: datetime | None = None) -> int:
    """Sample every registered queue; returns how many samples were written."""
    at = now or timezone.now()
    samples = []
    for name, queue in registered_queues().items():
        counts, estimated = status_counts(queue.model)
        samples.append(
            QueueDepthSample(
                queue=name,
                sampled_at=at,
                counts=counts,
                estimated=estimated,
                groups=group_counts(queue),
            )
        )
    for name, read in sorted(_sampled.items()):
        reading = read()
        samples.append(
            QueueDepthSample(
                queue=name,
                sampled_at=at,
                counts=reading.counts,
                estimated=reading.estimated,
                groups=reading.groups,
            )
        )
    QueueDepthSample.objects.bulk_create(samples)
    QueueDepthSample.objects.filter(sampled_at__lt=at - timedelta(days=KEEP_DAYS)).delete()
    return len(samples)


def group_counts(queue: Queue) -> dict[str, dict[str, int]]:
    """{group: {status: rows}} over the queue's group_statuses (none without group_by):
    exact under ESTIMATE_ABOVE_ROWS, above it from the planner's statistics on the group
    column and status together (a multivariate MCV list; a migration creates it)."""
    if not queue.group_by:
        return {}
    if connection.vendor == "postgresql":
        estimate = _planner_group_estimate(queue)
        if estimate is not None:
            return estimate
    rows = (
        queue.model._default_manager.filter(status__in=queue.group_statuses)
        .order_by()
        .values_list(queue.group_by, "status")
        .annotate(n=Count("pk"))
    )
    groups: dict[str, dict[str, int]] = {}
    for group, status, count in rows:
        groups.setdefault(str(group), {})[str(status)] = count
    return groups


def _planner_group_estimate(queue: Queue) -> dict[str, dict[str, int]] | None:
    field_name, _, label_field = queue.group_by.partition("__")
    field = concrete_field(queue.model, field_name)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.reltuples, s.attnames::text[], s.most_common_vals, s.most_common_freqs "
            "FROM pg_class c JOIN pg_stats_ext s ON s.tablename = c.relname "
            "AND s.schemaname = current_schema() WHERE c.oid = to_regclass(%s) "
            "AND s.attnames::text[] @> ARRAY[%s, 'status'] AND cardinality(s.attnames) = 2 "
            "AND s.most_common_vals IS NOT NULL",
            [queue.model._meta.db_table, field.column],
        )
        row = cursor.fetchone()
    if row is None or row[0] < ESTIMATE_ABOVE_ROWS:
        return None
    rows, columns, values, freqs = row
    group_at, status_at = columns.index(field.column), columns.index("status")
    labels: dict[str, str] = {}
    if label_field and field.related_model is not None:
        related = field.related_model._default_manager.values_list("pk", label_field)
        labels = {str(pk): str(label) for pk, label in related}
    groups: dict[str, dict[str, int]] = {}
    for combination, freq in zip(values, freqs, strict=True):
        status = combination[status_at]
        if status in queue.group_statuses:
            key = str(combination[group_at])
            groups.setdefault(labels.get(key, key), {})[status] = round(rows * freq)
    return groups


def latest_sample(queue: str) -> QueueDepthSample | None:
    """The queue's newest sample (one indexed row)."""
    return QueueDepthSample.objects.filter(queue=queue).order_by("-sampled_at").first()


def latest_samples() -> dict[str, QueueDepthSample]:
    """Each queue's newest sample."""
    samples = {name: latest_sample(name) for name in registered_queues()}
    return {name: sample for name, sample in samples.items() if sample is not None}


SERIES_EVERY_MINUTES = 10


def _spaced_samples(queue: str, field: str, hours: int) -> list[tuple[datetime, Any]]:
    """(sampled_at, `field`) of `queue`'s samples over the last `hours`: one every
    SERIES_EVERY_MINUTES and the newest, so a day's sparkline reads about 150 rows, not the
    day's 1,440."""
    since = timezone.now() - timedelta(hours=hours)
    recent = QueueDepthSample.objects.filter(queue=queue, sampled_at__gte=since)
    spaced = recent.filter(sampled_at__minute__in=range(0, 60, SERIES_EVERY_MINUTES))
    rows = list(spaced.order_by("sampled_at").values_list("sampled_at", field))
    newest = recent.order_by("-sampled_at").values_list("sampled_at", field).first()
    if newest is not None and (not rows or rows[-1][0] != newest[0]):
        rows.append(newest)
    return rows


def depth_series(queue: str, statuses: tuple[str, ...], *, hours: int = 24) -> list[tuple]:
    """(sampled_at, rows in `statuses`, or in all statuses) over the last `hours`."""
    return [
        (at, sum(v for k, v in counts.items() if not statuses or k in statuses))
        for at, counts in _spaced_samples(queue, "counts", hours)
    ]


def group_series(
    name: str, groups: Sequence[str], status: str, *, hours: int = 24
) -> dict[str, list[tuple[datetime, int]]]:
    """{group: [(sampled_at, its rows in `status`)]} over the last `hours` from `name`'s
    samples, for many groups' sparklines in one query."""
    rows = _spaced_samples(name, "groups", hours)
    return {
        group: [(at, (sampled.get(group) or {}).get(status, 0)) for at, sampled in rows]
        for group in groups
    }


@register_worker
class QueueDepthSampler(PeriodicWorker):
    name = "queue_depth_sampler"
    description = (
        "Every minute: each queue's rows per status and the failure inbox's groups, kept "
        "7 days (overview charts, inbox sparklines)"
    )
    schedule_minutes = 1

    class Outcome(StrEnum):
        SAMPLED = "sampled"

    def run_step(self, run: RunContext) -> Outcome:
        queue_depth_sample()
        return self.Outcome.SAMPLED


def queue_depth_metrics() -> Iterable[Metric]:
    """/metrics' rows per queue and status (a metric source registered at start)."""
    depth = GaugeMetricFamily(
        "opsconsole_queue_items", "Rows per queue and status", labels=["queue", "status"]
    )
    for name, queue in registered_queues().items():
        # Exact on a small table, the planner's estimate on a big one: a scrape every 15 s
        # must not count ten million rows.
        counts, _ = status_counts(queue.model)
        for status, count in sorted(counts.items()):
            depth.add_metric([name, str(status)], count)
    return [depth]
