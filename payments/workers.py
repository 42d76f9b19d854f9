"""The payments app's workers: refunds retried with backoff."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from django.conf import settings

from opsconsole.claims import RunContext, claim_due_rows
from opsconsole.workers import BatchWorker, register_worker
from payments.adapters import RefundProvider
from payments.models import Refund
from payments.refunds import RefundLeaseLost, due_refunds_filter, refund_attempt


@register_worker
class RefundRetryWorker(BatchWorker):
    """Retries failed refunds with backoff; the key `refund:<id>` makes a repeat harmless."""

    name = "refund_retry_worker"
    description = (
        "Refund retries: the attempt and 3 retries, exponential backoff"
        " (runbook: Bookings, payments and notifications)"
    )
    schedule_minutes = 1

    lease_model = Refund

    def item_seconds(self) -> float:
        # The outside call's timeout, plus writing its outcome.
        timeout = getattr(getattr(self, "provider", None), "timeout", None)
        return float(timeout or settings.PAYMENTS_HTTP_TIMEOUT_SECONDS) + 3

    def __init__(self, *, provider: RefundProvider | None = None, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.provider = provider

    outcome_classes: ClassVar[dict[str, str]] = {
        "completed": "succeeded",
        "retry_scheduled": "retried",
        "gave_up": "dead_lettered",
    }

    class Outcome(StrEnum):
        COMPLETED = "completed"
        RETRY_SCHEDULED = "retry_scheduled"
        GAVE_UP = "gave_up"
        LEASE_LOST = "lease_lost"

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return claim_due_rows(
            Refund,
            filters=due_refunds_filter(),
            owner=run.owner,
            limit=limit,
            lease_seconds=self.lease_seconds,
        )

    def process(self, item_id: int, run: RunContext) -> Outcome:
        try:
            refund = refund_attempt(
                refund_id=item_id, provider=self.provider, lease_owner=run.owner
            )
        except RefundLeaseLost:
            return self.Outcome.LEASE_LOST
        if refund.status == Refund.Status.COMPLETED:
            return self.Outcome.COMPLETED
        return self.Outcome.RETRY_SCHEDULED if refund.next_retry_at else self.Outcome.GAVE_UP
