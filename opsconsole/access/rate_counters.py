"""Counters for rate limits, one atomic statement per hit.

DRF's SimpleRateThrottle keeps every request's timestamp in a cache entry that each request
reads, unpickles, appends to and writes back: six statements on the database cache, a value
that grows with the rate (1,200 floats at 1,200/min), and concurrent requests that overwrite
each other's hit (a lost update, so a burst gets more than its limit). Here a hit is one
upsert on a row per caller and limit that returns the count: nothing is lost under
concurrency, and the cost does not grow with the rate.

The estimate is the sliding window of fixed windows: this window's hits plus the previous
window's, weighted by how much of it still overlaps the last `duration` seconds. Refused
hits count too, so a caller that keeps hammering past its limit stays limited until it
waits (Retry-After says how long).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from opsconsole.db.prepared import fetch_prepared
from opsconsole.models import RateCounter

_TABLE = RateCounter._meta.db_table
_UPSERT = f"INSERT INTO {_TABLE} AS counter (key, window_start, hits, previous_hits) VALUES "
_ON_CONFLICT = (
    " ON CONFLICT (key) DO UPDATE SET "
    "previous_hits = CASE WHEN counter.window_start = EXCLUDED.window_start "
    "THEN counter.previous_hits "
    "WHEN counter.window_start = EXCLUDED.window_start - %s THEN counter.hits ELSE 0 END, "
    "hits = CASE WHEN counter.window_start = EXCLUDED.window_start "
    "THEN counter.hits + 1 ELSE 1 END, "
    "window_start = EXCLUDED.window_start "
    "RETURNING key, hits, previous_hits"
)


@dataclass(frozen=True)
class Hit:
    hits: int
    previous_hits: int
    elapsed: float  # the fraction of the current window gone by
    duration: int

    @property
    def estimate(self) -> float:
        return self.previous_hits * (1 - self.elapsed) + self.hits

    def allowed(self, limit: int) -> bool:
        return self.estimate <= limit

    def wait_seconds(self, limit: int) -> int:
        """Seconds until the estimate is back within `limit` (no new hits meanwhile)."""
        if self.hits > limit or not self.previous_hits:
            gone = 1 - self.elapsed
        else:  # the previous window's weight must fall to (limit - hits)
            gone = max(0.0, (1 - (limit - self.hits) / self.previous_hits) - self.elapsed)
        return max(1, math.ceil(gone * self.duration))


def rate_hit(key: str, duration: int, *, now: float | None = None) -> Hit:
    """Count one hit for `key` in windows of `duration` seconds."""
    return rate_hits([key], duration, now=now)[key]


def rate_hits(keys: Sequence[str], duration: int, *, now: float | None = None) -> dict[str, Hit]:
    """Count one hit for each of `keys` (limits of the same window length, such as a
    caller's overall rate and an endpoint's own) in one statement: {key: its Hit}."""
    moment = time.time() if now is None else now
    window, offset = divmod(moment, duration)
    names = list(dict.fromkeys(key[:200] for key in keys))
    params: list[str | int] = []
    for name in names:
        params += [name, int(window) * duration]
    sql = _UPSERT + ", ".join(["(%s, %s, 1, 0)"] * len(names)) + _ON_CONFLICT
    if connection.vendor == "postgresql":
        # Every API request runs it: prepared, it is planned once per connection.
        rows = fetch_prepared(sql, [*params, duration])
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, duration])
            rows = cursor.fetchall()
    counted = {name: (hits, previous) for name, hits, previous in rows}
    return {key: Hit(*counted[key[:200]], offset / duration, duration) for key in keys}


def rate_counters_purge(*, idle: timedelta = timedelta(days=1), max_rows: int = 50_000) -> int:
    """Delete counters idle for `idle` (callers that stopped calling, such as an anonymous
    address seen once); the retention worker's daily step. Returns how many it deleted."""
    # Windows are at most a day long, so a counter whose window began over a day before the
    # idle cutoff counts nothing any more.
    cutoff = int((timezone.now() - idle).timestamp()) - 86_400
    stale = RateCounter.objects.filter(window_start__lt=cutoff).values("pk")[:max_rows]
    deleted, _ = RateCounter.objects.filter(pk__in=stale).delete()
    return deleted
