"""The payments app's workers: refunds retried with backoff, and the hosted checkout session
recovery (docs/runbooks/hosted-session-recovery.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from django.conf import settings

from notifications.communicators import HostedSessionRecoveryCommunicator
from opsconsole.http.context import bound_context
from opsconsole.workers import BatchWorker, register_worker
from opsconsole.workers.claims import RunContext, claim_due_rows
from payments.adapters import CheckoutProvider, RefundProvider
from payments.checkout_providers import default_checkout_provider
from payments.errors import HostedSessionChanged
from payments.hosted_recovery import (
    hosted_session_recovery_attempt,
    schedule_hosted_session_recovery,
)
from payments.models import Refund
from payments.refunds import RefundLeaseLost, due_refunds_filter, refund_attempt
from payments.webhooks import due_retries, webhook_failure_retry


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


@register_worker
class HostedSessionRecoveryWorker(BatchWorker):
    """Regenerates stalled hosted checkout links and reminds the customer
    (docs/runbooks/hosted-session-recovery.md)."""

    name = "hosted_recovery_worker"
    description = (
        "Hosted checkout session recovery: new links, reminders, cadence"
        " (runbook: Hosted session recovery)"
    )
    drains = True
    schedule_minutes = 5

    def __init__(
        self,
        *,
        provider: CheckoutProvider | None = None,
        communicator: HostedSessionRecoveryCommunicator | None = None,
        **kwargs: int,
    ) -> None:
        super().__init__(**kwargs)
        self.provider = provider or default_checkout_provider()
        self.communicator = communicator or HostedSessionRecoveryCommunicator()

    outcome_classes: ClassVar[dict[str, str]] = {
        "regenerated": "succeeded",
        "reminded": "succeeded",
        "link_failed": "retried",
        "abandoned": "dead_lettered",
    }

    class Outcome(StrEnum):
        REGENERATED = "regenerated"  # a new checkout link
        REMINDED = "reminded"  # the same link, the customer reminded
        LINK_FAILED = "link_failed"
        ABANDONED = "abandoned"  # retries exhausted
        LEASE_LOST = "lease_lost"

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return schedule_hosted_session_recovery(
            owner=run.owner, limit=limit, lease_seconds=self.lease_seconds
        )

    def process(self, item_id: int, run: RunContext) -> Outcome:
        with bound_context():
            try:
                return self.Outcome(
                    hosted_session_recovery_attempt(
                        session_id=item_id,
                        lease_owner=run.owner,
                        triggered_by=run.triggered_by,
                        provider=self.provider,
                        communicator=self.communicator,
                    )
                )
            except HostedSessionChanged:
                return self.Outcome.LEASE_LOST


@register_worker
class StripeEventRetryWorker(BatchWorker):
    """Stripe events that arrived before what they name (a refund before its payment): run
    again with backoff until they apply; a person is asked only once the retries are spent
    (docs/runbooks/bookings-payments-notifications.md)."""

    name = "stripe_event_retry_worker"
    description = (
        "Out-of-order Stripe events: retried 1, 2, 4 ... 32 minutes apart, then to a person"
        " (runbook: Bookings, payments and notifications)"
    )
    schedule_minutes = 1

    outcome_classes: ClassVar[dict[str, str]] = {
        "applied": "succeeded",
        "retry_later": "retried",
        "to_operator": "dead_lettered",
    }

    class Outcome(StrEnum):
        APPLIED = "applied"
        RETRY_LATER = "retry_later"
        TO_OPERATOR = "to_operator"
        GONE = "gone"  # applied by a redelivery, or reprocessed by a person, meanwhile

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        # Each step locks its row (skip locked): two runs never apply one event twice, and
        # the event's own row lock orders it with a redelivery from Stripe.
        return due_retries()[:limit]

    def process(self, item_id: int, run: RunContext) -> Outcome:
        return self.Outcome(webhook_failure_retry(failure_id=item_id))
