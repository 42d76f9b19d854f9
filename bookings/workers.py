from __future__ import annotations

from enum import StrEnum

from django.db.models import Q
from django.utils import timezone

from bookings import services
from bookings.models import BookingHold
from opsconsole.workers import BatchWorker, register_worker
from opsconsole.workers.claims import RunContext, claim_due_rows


@register_worker
class BookingHoldExpiryWorker(BatchWorker):
    """Releases holds nobody confirmed in time; re-queues the ones still in their grace period."""

    name = "booking_hold_expiry_worker"
    description = (
        "Booking holds: release after 5 minutes plus grace"
        " (runbook: Bookings, payments and notifications)"
    )
    schedule_minutes = 1

    class Outcome(StrEnum):
        EXPIRED = "expired"
        REQUEUED = "requeued"  # still in its grace period
        LEASE_LOST = "lease_lost"
        ALREADY_CONFIRMED = "already_confirmed"
        ALREADY_EXPIRED = "already_expired"

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return claim_due_rows(
            BookingHold,
            filters=Q(status=BookingHold.Status.ACTIVE, next_check_at__lte=timezone.now()),
            owner=run.owner,
            limit=limit,
            lease_seconds=self.lease_seconds,
            order_by="next_check_at",
        )

    def process(self, item_id: int, run: RunContext) -> Outcome:
        return self.Outcome(services.booking_hold_expire(hold_id=item_id, lease_owner=run.owner))
