"""Outcomes per minute for every worker's queue (issue: operator views at ten million rows).

A worker declares which of its outcomes are a success, a retry, a failure or a dead letter
(`outcome_classes`); as each run ends, the engine adds the run's counts to the minute's row
in one upsert. The overview draws each queue's outcomes over the last hour, day and week
from these rows, so a chart costs the same at 10M items as at 10k.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from opsconsole.models import WorkerOutcomeMinute
from opsconsole.monitoring import charts

CLASSES = ("succeeded", "retried", "failed", "dead_lettered")
KEEP_DAYS = 8  # the week's chart, and a day to spare

_TABLE = WorkerOutcomeMinute._meta.db_table


def worker_outcomes_add(worker: str, counts: Mapping[str, int], at: datetime) -> None:
    """Add `counts` ({class: items}) to `worker`'s row for the minute of `at`."""
    added = {name: int(counts.get(name, 0)) for name in CLASSES}
    if not any(added.values()):
        return
    minute = at.replace(second=0, microsecond=0)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in CLASSES)
    sums = ", ".join(
        f"{quote(name)} = {quote(_TABLE)}.{quote(name)} + EXCLUDED.{quote(name)}"
        for name in CLASSES
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(_TABLE)} (worker, minute, {columns}) "
            f"VALUES (%s, %s, {', '.join(['%s'] * len(CLASSES))}) "
            f"ON CONFLICT (worker, minute) DO UPDATE SET {sums}",
            [worker, minute, *added.values()],
        )


def worker_outcomes_purge() -> int:
    """Delete minutes older than the week's chart; the retention worker's daily step."""
    cutoff = timezone.now() - timedelta(days=KEEP_DAYS)
    deleted, _ = WorkerOutcomeMinute.objects.filter(minute__lt=cutoff).delete()
    return deleted


def outcome_buckets(
    rows: QuerySet[Any],
    *,
    time_field: str,
    columns: Mapping[str, str],
    span: timedelta,
    step: timedelta,
) -> list[tuple[str, dict[str, int]]]:
    """Per `step` (a minute or an hour) over the last `span`: the sums of `columns`
    ({series key: column}) of per-minute rollup `rows` whose minute is `time_field`."""
    now = timezone.now()
    if step == timedelta(minutes=1):
        end = now.replace(second=0, microsecond=0)
        window = rows.filter(**{f"{time_field}__gt": end - span, f"{time_field}__lte": end})
        by, label = time_field, "%H:%M"
    else:
        end = now.replace(minute=0, second=0, microsecond=0)
        window = rows.filter(**{f"{time_field}__gte": end - span + step}).annotate(
            hour=TruncHour(time_field)
        )
        by, label = "hour", "%a %H:00"
    totals = window.values(by).annotate(**{key: Sum(column) for key, column in columns.items()})
    by_time = {row[by]: {key: int(row[key] or 0) for key in columns} for row in totals}
    count = int(span / step)
    starts = [end - step * (count - 1 - index) for index in range(count)]
    return [(f"{start:{label}}", by_time.get(start, {})) for start in starts]


SPANS = (
    ("last hour, per minute", "hour", timedelta(hours=1), timedelta(minutes=1)),
    ("last day, per hour", "day", timedelta(days=1), timedelta(hours=1)),
    ("last week, per hour", "week", timedelta(days=7), timedelta(hours=1)),
)


def queue_outcome_charts(workers: Sequence[tuple[str, str]]) -> SafeString:
    """For each (worker name, what its queue is), its outcomes over the last hour, day and
    week; the overview's section for every queue."""
    identity = {name: name for name in CLASSES}
    rows = []
    for worker, title in workers:
        mine = WorkerOutcomeMinute.objects.filter(worker=worker)
        drawn = [
            (
                label,
                charts.stacked_bars(
                    outcome_buckets(
                        mine, time_field="minute", columns=identity, span=span, step=step
                    ),
                    charts.OUTCOME_SERIES,
                    testid=f"outcomes-{worker}-{key}",
                    width=360,
                    height=60,
                ),
            )
            for label, key, span, step in SPANS
        ]
        rows.append((title, worker, *(html for _, html in drawn)))
    header = format_html_join("", "<th>{}</th>", ((label,) for label, *_ in SPANS))
    body = format_html_join(
        "",
        "<tr><td><strong>{}</strong><br><small>{}</small></td><td>{}</td><td>{}</td>"
        "<td>{}</td></tr>",
        rows,
    )
    return format_html(
        '<table data-testid="queue-outcomes"><thead><tr><th>Queue</th>{}</tr></thead>'
        "<tbody>{}</tbody></table>",
        header,
        body,
    )


def every_queue_outcomes() -> SafeString:
    """The overview's section: each worker that classes its outcomes, by its description."""
    from opsconsole.workers.registry import registered_workers

    charted = sorted(
        (name, worker.description)
        for name, worker in registered_workers().items()
        if worker.outcome_classes
    )
    return queue_outcome_charts(charted)
