"""Stripe webhooks (docs/runbooks/bookings-payments-notifications.md): verify the signature,
process each event id once, keep critical failures for manual processing, and answer 200 so
Stripe stops retrying."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import stripe
import structlog
from django.conf import settings
from django.db import transaction

from opsconsole.evidence import audit
from opsconsole.http.errors import DependencyUnavailable, InvalidInput, NotFound
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


def stripe_event_process(*, event: dict[str, Any]) -> dict[str, Any]:
    """Once per event id: concurrent deliveries queue on the event's row lock."""
    event_id, event_type = event["id"], str(event.get("type", ""))
    with transaction.atomic():
        created = StripeEvent.objects.bulk_create(
            [StripeEvent(event_id=event_id, event_type=event_type)], ignore_conflicts=True
        )
        record = StripeEvent.objects.select_for_update().get(event_id=event_id)
        if record.status == StripeEvent.Status.PROCESSED:
            StripeEvent.objects.filter(pk=record.pk).update(deliveries=record.deliveries + 1)
            return {"received": True, "duplicate": True}
        if not created or record.status == StripeEvent.Status.FAILED:
            record.deliveries += 1
        result = _run_handler(record, event)
        record.save()
    return result


def _run_handler(record: StripeEvent, event: dict[str, Any]) -> dict[str, Any]:
    handler = HANDLERS.get(record.event_type)
    try:
        with transaction.atomic():  # a failing handler rolls back its own writes only
            if handler is not None:
                handler(event)
    except Exception as exc:
        logger.exception(
            "stripe_webhook_processing_failed", event_id=record.event_id, type=record.event_type
        )
        record.mark_failed(error=f"{type(exc).__name__}: {exc}")
        if record.event_type in CRITICAL_EVENT_TYPES:
            failure, _ = WebhookFailure.objects.update_or_create(
                provider="stripe",
                event_id=record.event_id,
                status=WebhookFailure.Status.PENDING_MANUAL,
                defaults={
                    "event_type": record.event_type,
                    "payload": event,
                    "error": record.error,
                },
            )
            audit.record(
                "payments.webhook_failure.stored",
                obj=failure,
                after={"status": failure.status, "error": failure.error},
                actor="stripe",
            )
        return {"received": True, "processingFailed": True}
    record.mark_processed()
    return {"received": True, **({} if handler else {"ignored": True})}


def webhook_failure_reprocess(*, failure_id: int, actor: audit.Actor, reason: str) -> bool:
    """Operator action: run the stored event again. True when it went through."""
    with transaction.atomic():
        failure = WebhookFailure.objects.select_for_update().filter(pk=failure_id).first()
        if failure is None:
            raise WebhookFailureNotFound()
        if failure.status != WebhookFailure.Status.PENDING_MANUAL:
            return True
        if failure.event_type == MALFORMED_EVENT_TYPE:
            # No event to run: a person checks it with Stripe and resolves it in the inbox.
            return False
        record = StripeEvent.objects.select_for_update().get(event_id=failure.event_id)
        before = {"status": failure.status, "error": failure.error}
        record.reprocess()
        _run_handler(record, failure.payload)
        record.save()
        failure.refresh_from_db()
        failure.reprocess_attempts += 1
        succeeded = record.status == StripeEvent.Status.PROCESSED
        if succeeded:
            failure.mark_reprocessed(resolved_by=audit.actor_label(actor))
        else:
            failure.error = record.error
        failure.save()
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
