"""Events entering the integration queue from producers: the ingestion API's record of the
event ids it has seen, so a producer's retry within 7 days makes no second item."""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models

from recovery.models.queue import Integration, RecoveryItem


class IngestedEvent(models.Model):
    """One producer's event id per integration, with the item it became and a digest of what
    it carried.

    The unique triple is the guarantee: two requests of one producer racing with the same
    event id insert one row, and the loser answers the winner's item; another producer's
    same id is another event. The retention worker deletes rows older than
    INGESTION_DEDUP_DAYS, after which the id may be sent again as a new event.
    """

    # No index of its own: the unique pair leads with it. A second index on the integration
    # alone tempted the planner, with a fast-growing table's stale statistics, into reading
    # every id the integration ever sent to find a batch's hundred.
    # Neither reference is a database constraint: each was a trigger lookup per ingested
    # event (two per event, a fifth of the ingestion statement), guarding rows written in
    # the one statement that also writes what they point to. Items are never deleted and
    # integrations only disabled, so neither can dangle; these rows expire in days anyway.
    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # The producer (user) that sent it: ids are theirs, so another producer's same id never
    # meets this one. A plain column, as the references above (0: recorded before ids were
    # scoped per producer; such a row deduplicates nothing and expires within the window).
    producer_id = models.BigIntegerField(default=0)
    event_id = models.CharField(max_length=200)
    # SHA-256 of the event's type and payload (keys sorted): a retry carries the same, a
    # different event under a known id is refused ("": recorded before digests were kept).
    payload_digest = models.CharField(max_length=64, blank=True, default="")
    item = models.ForeignKey(
        RecoveryItem,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # A block-range index for the daily purge: rows arrive in created_at order, and a
        # B-tree here was a third index insert per ingested event.
        indexes = [BrinIndex(fields=["created_at"], name="ingested_event_created_brin")]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "producer_id", "event_id"],
                name="ingested_event_once_per_producer",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → item {self.item_id}"


# Upper bounds (milliseconds) of the latency buckets a rollup counts attempts in; the last
# bucket takes everything slower.
LATENCY_BUCKETS_MS = (100, 250, 500, 1000, 2500, 5000, 10000)


def latency_bucket_field(duration_ms: int | None) -> str:
    for bound in LATENCY_BUCKETS_MS:
        if duration_ms is not None and duration_ms <= bound:
            return f"latency_le_{bound}"
    return "latency_over"


class DeliveryRollup(models.Model):
    """One integration's delivery outcomes in one minute, counted as they happen.

    Each outcome adds to its minute's row in the statement that records the outcome, so
    success rates and charts read a day in 1,440 small rows, never the queue itself.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    # Concurrent delivery processors count into their own row of the minute (by lease
    # owner), so their outcome statements never queue on one row's lock; readers sum them.
    shard = models.PositiveSmallIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    retry_scheduled = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    dlq = models.PositiveIntegerField(default=0)
    latency_le_100 = models.PositiveIntegerField(default=0)
    latency_le_250 = models.PositiveIntegerField(default=0)
    latency_le_500 = models.PositiveIntegerField(default=0)
    latency_le_1000 = models.PositiveIntegerField(default=0)
    latency_le_2500 = models.PositiveIntegerField(default=0)
    latency_le_5000 = models.PositiveIntegerField(default=0)
    latency_le_10000 = models.PositiveIntegerField(default=0)
    latency_over = models.PositiveIntegerField(default=0)

    OUTCOMES = ("succeeded", "retry_scheduled", "failed", "dlq")
    BUCKETS = (*(f"latency_le_{bound}" for bound in LATENCY_BUCKETS_MS), "latency_over")
    SHARDS = 8

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "minute", "shard"],
                name="delivery_rollup_one_row_per_minute_and_shard",
            )
        ]

    def __str__(self) -> str:
        return f"{self.integration_id} @ {self.minute:%Y-%m-%d %H:%M}"
