from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from django.db.models import Q
from django.utils import timezone

from bookings import (
    nudges,  # noqa: F401  (registers the nudge workers)
    services,
)
from bookings.models import BookingHold, Bundle, CatalogChange, Fulfillment
from bookings.services.bundles import GuardrailOutcome, bundle_check
from bookings.services.catalog import (
    CatalogOutcome,
    catalog_change_apply,
    catalog_changes_failing,
)
from bookings.services.fulfilment import FulfilmentOutcome, fulfilment_process
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


@register_worker
class FulfillmentProcessor(BatchWorker):
    """Paid bookings' fulfilment: the entry code, the confirmation and `booking.fulfilled`."""

    name = "fulfillment_processor"
    description = (
        "Paid bookings: entry code, confirmation and partner event, once"
        " (runbook: Incident response)"
    )
    schedule_minutes = 1
    Outcome = FulfilmentOutcome
    lease_model = Fulfillment
    outcome_classes: ClassVar[dict[str, str]] = {
        "fulfilled": "succeeded",
        "retry_scheduled": "retried",
        "parked": "dead_lettered",
    }

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return claim_due_rows(
            Fulfillment,
            filters=Q(status=Fulfillment.Status.PENDING, next_retry_at__lte=timezone.now()),
            owner=run.owner,
            limit=limit,
            lease_seconds=self.lease_seconds,
        )

    def process(self, item_id: int, run: RunContext) -> FulfilmentOutcome:
        return fulfilment_process(fulfillment_id=item_id, lease_owner=run.owner)


@register_worker
class CatalogScheduler(BatchWorker):
    """Scheduled catalog changes, applied at their time, once, in order per resource."""

    name = "catalog_scheduler"
    description = (
        "Catalog: open slots, prices, closing for maintenance, at their time"
        " (runbook: Incident response)"
    )
    schedule_minutes = 1
    Outcome = CatalogOutcome
    lease_model = CatalogChange
    outcome_classes: ClassVar[dict[str, str]] = {
        "applied": "succeeded",
        "retry_scheduled": "retried",
        "parked": "dead_lettered",
    }

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return claim_due_rows(
            CatalogChange,
            filters=Q(
                status__in=[CatalogChange.Status.SCHEDULED, CatalogChange.Status.FAILING],
                next_retry_at__lte=timezone.now(),
            ),
            owner=run.owner,
            limit=limit,
            lease_seconds=self.lease_seconds,
        )

    def process(self, item_id: int, run: RunContext) -> CatalogOutcome:
        return catalog_change_apply(change_id=item_id, lease_owner=run.owner)

    def still_failing(self) -> str:
        return catalog_changes_failing()


@register_worker
class BundleGuardrailWorker(BatchWorker):
    """Each bundle checked against its parts; a broken one stops selling."""

    name = "bundle_guardrail_worker"
    description = (
        "Bundles: stop selling one whose part is closed or repriced (runbook: Incident response)"
    )
    schedule_minutes = 1
    Outcome = GuardrailOutcome
    lease_model = Bundle
    outcome_classes: ClassVar[dict[str, str]] = {
        "selling": "succeeded",
        "resumed": "succeeded",
        "stopped": "failed",
    }

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return claim_due_rows(
            Bundle,
            filters=Q(next_check_at__lte=timezone.now()) | Q(next_check_at__isnull=True),
            owner=run.owner,
            limit=limit,
            lease_seconds=self.lease_seconds,
            order_by="next_check_at",
        )

    def process(self, item_id: int, run: RunContext) -> GuardrailOutcome:
        return bundle_check(bundle_id=item_id, lease_owner=run.owner)
