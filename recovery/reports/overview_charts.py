"""The overview's charts of integration delivery outcomes: per minute over the last hour,
per hour over the last day and the last week, from the per-minute rollups written with each
outcome (never the queue), so they cost the same at 10M deliveries as at 10k."""

from __future__ import annotations

from datetime import timedelta

from django.utils.html import format_html

from opsconsole.monitoring import charts
from opsconsole.workers.outcome_rollups import outcome_buckets as rollup_buckets
from recovery.models import DeliveryRollup

# The rollup's outcome columns under the chart's series keys.
SERIES_COLUMNS = {
    "succeeded": "succeeded",
    "retried": "retry_scheduled",
    "failed": "failed",
    "dead_lettered": "dlq",
}


def outcome_series(counts: dict[str, int]) -> dict[str, int]:
    """A rollup's outcome columns under the charts' series keys."""
    return {key: int(counts.get(column) or 0) for key, column in SERIES_COLUMNS.items()}


def outcome_buckets(*, span: timedelta, step: timedelta) -> list[tuple[str, dict[str, int]]]:
    """Outcomes of every integration per `step` (a minute or an hour) over the last `span`."""
    return rollup_buckets(
        DeliveryRollup.objects.all(),
        time_field="minute",
        columns=SERIES_COLUMNS,
        span=span,
        step=step,
    )


def delivery_outcome_charts() -> str:
    hour, day = timedelta(hours=1), timedelta(days=1)
    return format_html(
        "<h3>Last hour, per minute</h3>{}<h3>Last day, per hour</h3>{}"
        "<h3>Last week, per hour</h3>{}",
        charts.stacked_bars(
            outcome_buckets(span=hour, step=timedelta(minutes=1)),
            charts.OUTCOME_SERIES,
            testid="deliveries-last-hour",
        ),
        charts.stacked_bars(
            outcome_buckets(span=day, step=hour),
            charts.OUTCOME_SERIES,
            testid="deliveries-last-day",
        ),
        charts.stacked_bars(
            outcome_buckets(span=7 * day, step=hour),
            charts.OUTCOME_SERIES,
            testid="deliveries-last-week",
        ),
    )
