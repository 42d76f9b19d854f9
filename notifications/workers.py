from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import ClassVar

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from notifications import services
from notifications.adapters import ChannelAdapter
from notifications.campaign_dispatch import (
    campaign_mark_stalled,
    campaign_target_send,
    dispatchable_campaigns,
)
from notifications.campaign_import import campaign_import_run
from notifications.campaigns import in_quiet_hours
from notifications.models import Campaign, CampaignTarget, CampaignTargetImport, Notification
from opsconsole.workers import BatchWorker, register_worker
from opsconsole.workers.claims import RunContext, claim_due_rows


class ChannelWorker(BatchWorker):
    """A worker whose items are sends on a message channel: an adapter may be given (tests),
    and an item's budget is the channel's timeout plus writing the outcome."""

    def __init__(self, *, adapter: ChannelAdapter | None = None, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.adapter = adapter

    def item_seconds(self) -> float:
        timeout = getattr(getattr(self, "adapter", None), "timeout", None)
        return float(timeout or settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS) + 3


@register_worker
class NotificationDeliveryWorker(ChannelWorker):
    """Sends queued notifications; 5 attempts with backoff from 1 minute, then DEAD."""

    name = "notification_delivery_worker"
    description = (
        "Email and other notifications: retries then dead letter"
        " (runbook: Bookings, payments and notifications)"
    )
    drains = True
    schedule_minutes = 1

    lease_model = Notification

    outcome_classes: ClassVar[dict[str, str]] = {
        "sent": "succeeded",
        "retry_scheduled": "retried",
        "dead_lettered": "dead_lettered",
    }

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


@register_worker
class CampaignDispatcherWorker(ChannelWorker):
    """Advances running campaigns' targets, at most `throttle_per_minute` per campaign per run."""

    name = "campaign_dispatcher_worker"
    description = (
        "WhatsApp campaigns: quiet hours, throttle, Retry-After (runbook: WhatsApp send failures)"
    )
    schedule_minutes = 1

    lease_model = CampaignTarget

    outcome_classes: ClassVar[dict[str, str]] = {
        "sent": "succeeded",
        "retry_scheduled": "retried",
        "rate_limited": "retried",
        "failed": "failed",
        "invalid": "failed",
    }

    class Outcome(StrEnum):
        SENT = "sent"
        RETRY_SCHEDULED = "retry_scheduled"
        RATE_LIMITED = "rate_limited"
        FAILED = "failed"
        INVALID = "invalid"
        HELD_BACK = "held_back"
        LEASE_LOST = "lease_lost"

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        now = timezone.now()
        claimed: list[int] = []
        for campaign in dispatchable_campaigns(now):
            room = min(campaign.throttle_per_minute, limit - len(claimed))
            if room <= 0:
                break
            claimed += claim_due_rows(
                CampaignTarget,
                filters=Q(
                    campaign=campaign,
                    status__in=CampaignTarget.SENDABLE,
                    next_retry_at__lte=now,
                ),
                owner=run.owner,
                limit=room,
                lease_seconds=self.lease_seconds,
            )
        return claimed

    def process(self, item_id: int, run: RunContext) -> Outcome:
        return self.Outcome(
            campaign_target_send(target_id=item_id, lease_owner=run.owner, adapter=self.adapter)
        )


@register_worker
class CampaignTargetImporter(BatchWorker):
    """Imports campaigns' large target lists, staged by the request that created them, in
    batches of CAMPAIGN_IMPORT_BATCH_SIZE; each campaign starts once its list is in."""

    name = "campaign_target_importer"
    description = "Campaign target lists above CAMPAIGN_INLINE_TARGETS, imported in batches"
    drains = True
    schedule_minutes = 1

    lease_model = CampaignTargetImport

    class Outcome(StrEnum):
        IMPORTED = "imported"
        IN_PROGRESS = "in_progress"
        LEASE_LOST = "lease_lost"

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return claim_due_rows(
            CampaignTargetImport,
            filters=Q(completed_at__isnull=True, next_retry_at__lte=timezone.now()),
            owner=run.owner,
            limit=limit,
            lease_seconds=self.lease_seconds,
        )

    def process(self, item_id: int, run: RunContext) -> Outcome:
        return self.Outcome(
            campaign_import_run(
                import_id=item_id,
                lease_owner=run.owner,
                lease_seconds=self.lease_seconds,
                # A list at a time, within what a run may take; the rest waits for the next.
                budget_seconds=settings.WORKER_DRAIN_SECONDS,
            )
        )


@register_worker
class CampaignStallDetector(BatchWorker):
    """Marks running campaigns whose targets have not advanced in 5 minutes, and alerts."""

    name = "campaign_stall_detector"
    description = (
        "Campaigns running without progress for 5 minutes (runbook: Campaign dispatcher stalls)"
    )
    schedule_minutes = 1

    class Outcome(StrEnum):
        STALLED = "stalled"
        NOT_STALLED = "not_stalled"

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        now = timezone.now()
        cutoff = now - timedelta(seconds=settings.CAMPAIGN_STALL_AFTER_SECONDS)
        return [
            campaign.pk
            for campaign in Campaign.objects.filter(
                status=Campaign.Status.RUNNING,
                stalled_at__isnull=True,
                last_progress_at__lt=cutoff,
            )
            .filter(Q(throttled_until__isnull=True) | Q(throttled_until__lte=now))
            .filter(targets__status__in=CampaignTarget.SENDABLE, targets__next_retry_at__lte=now)
            .distinct()[:limit]
            if not in_quiet_hours(campaign, now)
        ]

    def process(self, item_id: int, run: RunContext) -> Outcome:
        return self.Outcome(campaign_mark_stalled(campaign_id=item_id))
