from __future__ import annotations

from enum import StrEnum

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from notifications import services
from notifications.adapters import ChannelAdapter
from notifications.models import Notification
from opsconsole.claims import RunContext, claim_due_rows
from opsconsole.workers import BatchWorker, register_worker


@register_worker
class NotificationDeliveryWorker(BatchWorker):
    """Sends queued notifications; 5 attempts with backoff from 1 minute, then DEAD."""

    name = "notification_delivery_worker"
    description = "Email and other notifications: retries then dead letter (seed 003)"
    schedule_task = "notifications.tasks.run_notification_delivery_worker"
    schedule_minutes = 1

    lease_model = Notification

    def item_seconds(self) -> float:
        # The outside call's timeout, plus writing its outcome.
        timeout = getattr(getattr(self, "adapter", None), "timeout", None)
        return float(timeout or settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS) + 3

    def __init__(self, *, adapter: ChannelAdapter | None = None, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.adapter = adapter

    class Outcome(StrEnum):
        SENT = "sent"
        RETRY_SCHEDULED = "retry_scheduled"
        DEAD_LETTERED = "dead_lettered"
        LEASE_LOST = "lease_lost"

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return claim_due_rows(
            Notification,
            filters=Q(status__in=Notification.SENDABLE, next_retry_at__lte=timezone.now()),
            owner=run.owner,
            limit=limit,
            lease_seconds=self.lease_seconds,
        )

    def process(self, item_id: int, run: RunContext) -> Outcome:
        return self.Outcome(
            services.notification_deliver(
                notification_id=item_id, lease_owner=run.owner, adapter=self.adapter
            )
        )
