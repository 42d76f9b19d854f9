"""Stripe webhooks (docs/runbooks/bookings-payments-notifications.md): verify the signature,
process each event id once, keep critical failures for manual processing, and answer 200 so
Stripe stops retrying."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import stripe
import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opsconsole.evidence import audit
from opsconsole.failures.retry import RetryPolicy
from opsconsole.http.errors import DependencyUnavailable, InvalidInput, NotFound
from opsconsole.models import Alert
from opsconsole.monitoring.alerts import alert_raise
from payments import card_payments, services
from payments.models import HostedCheckoutSession, StripeEvent, WebhookFailure

logger = structlog.get_logger(__name__)

# Events whose loss would lose money or a customer's purchase: kept for manual processing.
CRITICAL_EVENT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "payment_intent.succeeded",
        "charge.refunded",
        "charge.dispute.created",
        "refund.updated",
    }
)


class WebhookSignatureInvalid(InvalidInput):
    code = "PAY-400-WEBHOOK-SIGNATURE-INVALID"
    default_message = "Webhook signature verification failed."


class WebhookEventInvalid(InvalidInput):
    code = "PAY-400-WEBHOOK-EVENT-INVALID"
    default_message = "The signed body is not a Stripe event; it was kept for the inbox."


# A signed body that is no event: kept under this type, by the hash of its body.
MALFORMED_EVENT_TYPE = "malformed"


class WebhookNotConfigured(DependencyUnavailable):
    code = "PAY-503-WEBHOOK-NOT-CONFIGURED"
    default_message = "Stripe webhooks are not configured; the event was not accepted."


class WebhookFailureNotFound(NotFound):
    code = "PAY-404-WEBHOOK-FAILURE-NOT-FOUND"


def _session_for(checkout: dict[str, Any]) -> HostedCheckoutSession:
    reference = checkout.get("client_reference_id") or (checkout.get("metadata") or {}).get(
        "reference"
    )
    session = (
        HostedCheckoutSession.objects.filter(provider_session_id=checkout.get("id")).first()
        or HostedCheckoutSession.objects.filter(reference=reference or "").first()
    )
    if session is None:
        raise LookupError(
            f"no hosted session for checkout {checkout.get('id')!r} / reference {reference!r}"
        )
    return session


def _on_checkout_completed(event: dict[str, Any]) -> None:
    session = _session_for(event["data"]["object"])
    if session.status != HostedCheckoutSession.Status.COMPLETED:
        services.hosted_session_transition(
            session_id=session.pk, transition="complete", actor="stripe", reason=event["id"]
        )


def _on_checkout_expired(event: dict[str, Any]) -> None:
    session = _session_for(event["data"]["object"])
    if session.status == HostedCheckoutSession.Status.PENDING:
        services.hosted_session_transition(
            session_id=session.pk, transition="expire", actor="stripe", reason=event["id"]
        )


HANDLERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "checkout.session.completed": _on_checkout_completed,
    "checkout.session.expired": _on_checkout_expired,
    "charge.refunded": card_payments.on_charge_refunded,
    "payment_intent.succeeded": card_payments.on_payment_intent_succeeded,
    "charge.dispute.created": card_payments.on_dispute_created,
    "refund.updated": card_payments.on_refund_updated,
}


def stripe_webhook_receive(*, payload: bytes, signature: str) -> dict[str, Any]:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookNotConfigured()
    try:
        # The signature alone: stripe's construct_event also builds its Event from the body,
        # and a signed `[]` or string there raised a 500.
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:  # ValueError: not UTF-8
        raise WebhookSignatureInvalid(details={"reason": str(exc)[:200]}) from exc
    event, problem = _signed_event(payload)
    if event is None:
        failure = malformed_event_store(payload=payload, problem=problem)
        raise WebhookEventInvalid(details={"reason": problem, "failure_id": failure.pk})
    return stripe_event_process(event=event)


def _signed_event(payload: bytes) -> tuple[dict[str, Any] | None, str]:
    """The event in a verified body, or None and why it is none: not JSON, nested past
    the json module's depth, or no object with a string id."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:200]
    if not isinstance(event, dict):
        return None, f"the body is a JSON {type(event).__name__}, not an event object"
    if not isinstance(event.get("id"), str):
        return None, "the event has no id"
    return event, ""


@transaction.atomic
def malformed_event_store(*, payload: bytes, problem: str) -> WebhookFailure:
    """Keep a correctly signed body that is no event for a person (it came from Stripe, so
    something on either side is wrong): one open failure per distinct body, its text kept
    whole, since it may not even parse."""
    digest = hashlib.sha256(payload).hexdigest()
    failure, _ = WebhookFailure.objects.update_or_create(
        provider="stripe",
        event_id=f"{MALFORMED_EVENT_TYPE}:{digest[:40]}",
        status=WebhookFailure.Status.PENDING_MANUAL,
        defaults={
            "event_type": MALFORMED_EVENT_TYPE,
            # PostgreSQL's jsonb takes no NUL character, which a JSON body may carry.
            "payload": {
                "body": payload.decode("utf-8").replace("\x00", "\ufffd"),
                "sha256": digest,
            },
            "error": problem,
        },
    )
    audit.record(
        "payments.webhook_failure.stored",
        obj=failure,
        after={"status": failure.status, "error": failure.error},
        actor="stripe",
    )
    return failure


# Out-of-order events (docs/runbooks/bookings-payments-notifications.md): 1, 2, 4 ... 32
# minutes apart, 7 attempts over about an hour, before a person is asked.
OUT_OF_ORDER_RETRIES = RetryPolicy(
    max_attempts=7, base_seconds=60.0, cap_seconds=1800.0, jitter="floor"
)
RETRY_WORKER_ACTOR = "worker:stripe_event_retry_worker"


def stripe_event_process(*, event: dict[str, Any]) -> dict[str, Any]:
    """Once per event id: concurrent deliveries queue on the event's row lock."""
    event_id, event_type = event["id"], str(event.get("type", ""))
    with transaction.atomic():
        api_version = str(event.get("api_version") or "")[:64]
        created = StripeEvent.objects.bulk_create(
            [StripeEvent(event_id=event_id, event_type=event_type, api_version=api_version)],
            ignore_conflicts=True,
        )
        record = StripeEvent.objects.select_for_update().get(event_id=event_id)
        if created:
            _check_api_version(record)
        if record.status == StripeEvent.Status.PROCESSED:
            StripeEvent.objects.filter(pk=record.pk).update(deliveries=record.deliveries + 1)
            return {"received": True, "duplicate": True}
        if not created or record.status == StripeEvent.Status.FAILED:
            record.deliveries += 1
        failed = _apply(record, event, actor="stripe")
        if failed is not None:
            _keep_failed(record, event, failed)
        record.save()
    if failed is not None:
        return {"received": True, "processingFailed": True}
    return {"received": True, **({} if record.event_type in HANDLERS else {"ignored": True})}


API_VERSION_ALERT = "stripe_api_version_mismatch"


def _check_api_version(record: StripeEvent) -> None:
    """An event rendered with another API version than the pinned one: the webhook
    endpoint's version in Stripe's dashboard changed, and fields may have moved. One open
    alert per version, not one per event."""
    pinned = settings.STRIPE_API_VERSION
    if not record.api_version or record.api_version == pinned:
        return
    already = Alert.objects.filter(
        kind=API_VERSION_ALERT,
        acknowledged_at__isnull=True,
        details__api_version=record.api_version,
    ).exists()
    if not already:
        alert_raise(
            kind=API_VERSION_ALERT,
            severity="warning",
            obj=record,
            message=f"Stripe sent {record.event_type} {record.event_id} with API version "
            f"{record.api_version}; this console is pinned to {pinned}. Set the webhook "
            "endpoint's version in Stripe's dashboard to the pinned one.",
            details={"api_version": record.api_version, "pinned": pinned},
        )


def _apply(
    record: StripeEvent, event: dict[str, Any], *, actor: str, settle: bool = True
) -> Exception | None:
    """Run the event's handler; None when it applied, else what went wrong. `settle`: an
    open failure of the event is closed when it applies (a redelivery by Stripe got it
    through); a caller running the failure itself closes it."""
    handler = HANDLERS.get(record.event_type)
    try:
        with transaction.atomic():  # a failing handler rolls back its own writes only
            if handler is not None:
                handler(event)
    except Exception as exc:
        logger.warning(
            "stripe_webhook_processing_failed",
            event_id=record.event_id,
            type=record.event_type,
            error=f"{type(exc).__name__}: {exc}",
        )
        record.mark_failed(error=f"{type(exc).__name__}: {exc}")
        return exc
    record.mark_processed()
    if not settle:
        return None
    for failure in WebhookFailure.objects.select_for_update().filter(
        provider="stripe", event_id=record.event_id, status__in=OPEN_FAILURE
    ):
        before = {"status": failure.status, "error": failure.error}
        failure.mark_reprocessed(resolved_by=actor)
        failure.save()
        audit.record(
            "payments.webhook_failure.reprocessed",
            obj=failure,
            before=before,
            after={"status": failure.status},
            actor=actor,
            reason="the event applied",
        )
    return None


OPEN_FAILURE = (WebhookFailure.Status.RETRYING, WebhookFailure.Status.PENDING_MANUAL)


def _keep_failed(record: StripeEvent, event: dict[str, Any], exc: Exception) -> None:
    """A critical event that names what is not here yet (LookupError: Stripe sent it before
    the event that creates it) is retried by our worker; another failure of one waits for a
    person. Stripe is answered 2xx either way: its own retries would not
    order the events either."""
    if record.event_type not in CRITICAL_EVENT_TYPES:
        return  # logged; nothing is lost that a person would act on
    not_yet = isinstance(exc, LookupError)
    status = WebhookFailure.Status.RETRYING if not_yet else WebhookFailure.Status.PENDING_MANUAL
    failure, created = WebhookFailure.objects.get_or_create(
        provider="stripe",
        event_id=record.event_id,
        status__in=OPEN_FAILURE,
        defaults={
            "event_type": record.event_type,
            "payload": event,
            "error": record.error,
            "status": status,
            "next_retry_at": timezone.now()
            + timedelta(seconds=OUT_OF_ORDER_RETRIES.backoff_seconds(1))
            if not_yet
            else None,
        },
    )
    if not created:
        failure.error = record.error
        failure.save(update_fields=["error"])
        return
    audit.record(
        "payments.webhook_failure.stored",
        obj=failure,
        after={"status": failure.status, "error": failure.error},
        actor="stripe",
    )


def webhook_failure_reprocess(*, failure_id: int, actor: audit.Actor, reason: str) -> bool:
    """Operator action: run the stored event again. True when it went through."""
    with transaction.atomic():
        failure = WebhookFailure.objects.select_for_update().filter(pk=failure_id).first()
        if failure is None:
            raise WebhookFailureNotFound()
        if failure.status not in OPEN_FAILURE:
            return True
        if failure.event_type == MALFORMED_EVENT_TYPE:
            # No event to run: a person checks it with Stripe and resolves it in the inbox.
            return False
        before = {"status": failure.status, "error": failure.error}
        succeeded = _run_again(failure, actor=audit.actor_label(actor))
        audit.record(
            "payments.webhook_failure.reprocessed"
            if succeeded
            else "payments.webhook_failure.reprocess_failed",
            obj=failure,
            before=before,
            after={"status": failure.status, "error": failure.error},
            actor=actor,
            reason=reason,
        )
    return succeeded


def _run_again(failure: WebhookFailure, *, actor: str) -> bool:
    """The stored event through its handler once more (the caller holds the failure's
    lock); the failure is updated either way."""
    record = StripeEvent.objects.select_for_update().get(event_id=failure.event_id)
    record.reprocess()
    succeeded = _apply(record, failure.payload, actor=actor, settle=False) is None
    record.save()
    failure.attempt_count += 1
    if succeeded:
        failure.mark_reprocessed(resolved_by=actor)
    else:
        failure.error = record.error
    failure.save()
    return succeeded


def due_retries() -> list[int]:
    return list(
        WebhookFailure.objects.filter(
            status=WebhookFailure.Status.RETRYING, next_retry_at__lte=timezone.now()
        )
        .order_by("next_retry_at", "pk")
        .values_list("pk", flat=True)[:500]
    )


def webhook_failure_retry(*, failure_id: int) -> str:
    """The retry worker's step for one out-of-order event: applied, retried later, or handed
    to a person once the retries are spent. Returns which."""
    with transaction.atomic():
        failure = (
            WebhookFailure.objects.select_for_update(skip_locked=True)
            .filter(
                pk=failure_id,
                status=WebhookFailure.Status.RETRYING,
                next_retry_at__lte=timezone.now(),
            )
            .first()
        )
        if failure is None:
            return "gone"
        if _run_again(failure, actor=RETRY_WORKER_ACTOR):
            audit.record(
                "payments.webhook_failure.reprocessed",
                obj=failure,
                before={"status": WebhookFailure.Status.RETRYING},
                after={"status": failure.status},
                actor=RETRY_WORKER_ACTOR,
                reason="applied on retry: what it names is here now",
            )
            return "applied"
        if OUT_OF_ORDER_RETRIES.exhausted(failure.attempt_count + 1, None):
            failure.give_up_retrying()
            failure.save()
            audit.record(
                "payments.webhook_failure.retries_exhausted",
                obj=failure,
                before={"status": WebhookFailure.Status.RETRYING},
                after={"status": failure.status, "error": failure.error},
                actor=RETRY_WORKER_ACTOR,
            )
            return "to_operator"
        failure.next_retry_at = timezone.now() + timedelta(
            seconds=OUT_OF_ORDER_RETRIES.backoff_seconds(failure.attempt_count + 1)
        )
        failure.save(update_fields=["next_retry_at"])
        return "retry_later"
