"""Per-integration delivery statistics from the minute rollups: success rate, latency
percentiles (to the bucket) and the last day's outcomes by hour. Reads at most one row per
minute per integration; never the queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from django.db.models import Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from recovery.models import DeliveryRollup
from recovery.models.events import LATENCY_BUCKETS_MS

COUNTERS = (*DeliveryRollup.OUTCOMES, *DeliveryRollup.BUCKETS)


@dataclass(frozen=True)
class HourOfOutcomes:
    hour: datetime
    counts: dict[str, int]


@dataclass(frozen=True)
class DeliveryStats:
    since: datetime
    totals: dict[str, int]
    hours: list[HourOfOutcomes] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return sum(self.totals[name] for name in DeliveryRollup.OUTCOMES)

    @property
    def success_rate(self) -> float | None:
        """Successful attempts over all attempts (None: no attempt in the window)."""
        return round(self.totals["succeeded"] / self.attempts, 4) if self.attempts else None

    def percentile_bucket(self, share: float) -> int | None:
        """The index of the latency bucket the `share` percentile falls in (None: no
        attempts); higher is slower."""
        total = sum(self.totals[name] for name in DeliveryRollup.BUCKETS)
        if not total:
            return None
        seen = 0
        for index, name in enumerate(DeliveryRollup.BUCKETS):
            seen += self.totals[name]
            if seen >= share * total:
                return index
        return len(DeliveryRollup.BUCKETS) - 1

    def percentile_ms(self, share: float) -> str | None:
        """The latency bucket the `share` percentile falls in: "<=250" or ">10000"."""
        index = self.percentile_bucket(share)
        if index is None:
            return None
        if index < len(LATENCY_BUCKETS_MS):
            return f"<={LATENCY_BUCKETS_MS[index]}"
        return f">{LATENCY_BUCKETS_MS[-1]}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "attempts": self.attempts,
            "outcomes": {name: self.totals[name] for name in DeliveryRollup.OUTCOMES},
            "success_rate": self.success_rate,
            "latency_p50_ms": self.percentile_ms(0.5),
            "latency_p95_ms": self.percentile_ms(0.95),
            "hours": [
                {
                    "hour": hour.hour.isoformat(),
                    **{n: hour.counts[n] for n in DeliveryRollup.OUTCOMES},
                }
                for hour in self.hours
            ],
        }


def delivery_stats(integration_id: int, *, hours: int = 24) -> DeliveryStats:
    since = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = DeliveryRollup.objects.filter(integration_id=integration_id, minute__gte=since)
    by_hour = {
        row["hour"]: row
        for row in rows.annotate(hour=TruncHour("minute"))
        .values("hour")
        .annotate(**{name: Sum(name) for name in COUNTERS})
    }
    series = []
    for offset in range(hours):
        hour = since + timedelta(hours=offset)
        row: Mapping[str, Any] = by_hour.get(hour, {})
        series.append(HourOfOutcomes(hour, {name: int(row.get(name) or 0) for name in COUNTERS}))
    totals = {name: sum(hour.counts[name] for hour in series) for name in COUNTERS}
    return DeliveryStats(since=since, totals=totals, hours=series)


def success_rates(integration_ids: list[int], *, hours: int = 24) -> dict[int, float | None]:
    """Each integration's success rate over the window, in one query (the admin's list)."""
    since = timezone.now() - timedelta(hours=hours)
    sums = (
        DeliveryRollup.objects.filter(integration_id__in=integration_ids, minute__gte=since)
        .values("integration_id")
        .annotate(**{name: Sum(name) for name in DeliveryRollup.OUTCOMES})
    )
    rates: dict[int, float | None] = dict.fromkeys(integration_ids)
    for row in cast(list[dict[str, Any]], list(sums)):
        attempts = sum(int(row[name] or 0) for name in DeliveryRollup.OUTCOMES)
        rates[row["integration_id"]] = (
            round(int(row["succeeded"] or 0) / attempts, 4) if attempts else None
        )
    return rates
