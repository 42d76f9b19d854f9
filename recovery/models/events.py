"""Events entering the integration queue from producers: the ingestion API's record of the
event ids it has seen, so a producer's retry within 7 days makes no second item."""

from __future__ import annotations

from django.db import models

from recovery.models.queue import Integration, RecoveryItem


class IngestedEvent(models.Model):
    """One producer event id per integration, with the item it became and the answer given.

    The unique pair is the guarantee: two requests racing with the same event id insert one
    row, and the loser answers the winner's item. The retention worker deletes rows older
    than INGESTION_DEDUP_DAYS, after which the id may be sent again as a new event.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=200)
    item = models.ForeignKey(RecoveryItem, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "event_id"], name="ingested_event_once_per_integration"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → item {self.item_id}"
