"""The email provider's tracking webhooks (django-anymail): delivered, bounced and complained
update the notification; a hard bounce or a complaint suppresses the address
(docs/runbooks/bookings-payments-notifications.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from notifications.models import Channel, Notification, SuppressedRecipient
from opsconsole.evidence import audit
from opsconsole.http.errors import DependencyUnavailable, InvalidInput
from opsconsole.models import AuditEvent

# anymail's names for Resend's email.delivered, email.bounced, email.complained and
# email.delivery_delayed ("deferred": the receiving server asked to try later).
TRACKED = ("delivered", "bounced", "complained", "deferred")
SUPPRESSED = "SUPPRESSED"  # the failure code of a message to a suppressed address
SUPPRESSING = ("bounced", "complained")


class EmailWebhookNotConfigured(DependencyUnavailable):
    code = "NTF-503-WEBHOOK-NOT-CONFIGURED"
    default_message = "Email tracking webhooks are not configured; the event was not accepted."


class EmailWebhookSignatureInvalid(InvalidInput):
    code = "NTF-400-WEBHOOK-SIGNATURE-INVALID"
    default_message = "Webhook signature verification failed."


class EmailWebhookBodyInvalid(InvalidInput):
    code = "NTF-400-WEBHOOK-BODY-INVALID"
    default_message = "The webhook body is not a JSON object."


def svix_signature_problem(request: HttpRequest, secret: str) -> str:
    """Why the request's Svix signature does not verify ("" when it does). svix answers a
    malformed header (`v1`, `v1,!!!`: no comma, not base64) or a body that is not UTF-8 with
    a plain ValueError, not its WebhookVerificationError, and anymail passes those on as a
    500; each is a refused signature here, checked before anymail's view runs."""
    from svix.webhooks import Webhook, WebhookVerificationError

    try:
        Webhook(secret).verify(request.body, dict(request.headers))
    except (WebhookVerificationError, ValueError) as exc:  # binascii and Unicode errors too
        return f"{type(exc).__name__}: {exc}"[:200]
    return ""


def json_object_problem(body: bytes) -> str:
    """Why a (verified) body is no JSON object, which anymail's parser assumes ("" when it is
    one): garbage, a list, a string, or nesting too deep for the json module."""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return "" if isinstance(parsed, dict) else f"a JSON {type(parsed).__name__}, not an object"


def is_suppressed(channel: str, recipient: str) -> SuppressedRecipient | None:
    return SuppressedRecipient.objects.filter(
        channel=channel, recipient=recipient.strip().lower()
    ).first()


@transaction.atomic
def email_delivery_record(
    *,
    message_id: str,
    status: str,
    recipient: str,
    event_id: str,
    occurred_at: datetime | None = None,
) -> int:
    """The provider's word on a sent message; returns how many notifications it changed.

    Resend does not order its events, and Svix may deliver one twice: each event (its
    `svix-id`) is applied once, and one older than the status already recorded (a late
    `email.delivered` after the bounce) is kept in the audit log without turning the
    message back."""
    updated = 0
    at = occurred_at or timezone.now()
    for notification in Notification.objects.select_for_update().filter(external_id=message_id):
        if event_id and _already_applied(notification, event_id):
            continue
        before = {"delivery_status": notification.delivery_status}
        if notification.delivery_status_at and at < notification.delivery_status_at:
            audit.record(
                "notifications.notification.tracking_superseded",
                obj=notification,
                before=before,
                after=before,
                actor="email-provider",
                reason=event_id,
                metadata={"status": status, "occurred_at": at.isoformat()},
            )
            continue
        notification.delivery_status = status
        notification.delivery_status_at = at
        notification.save(update_fields=["delivery_status", "delivery_status_at"])
        audit.record(
            f"notifications.notification.{status}",
            obj=notification,
            before=before,
            after={"delivery_status": status},
            actor="email-provider",
            reason=event_id,
        )
        updated += 1
    if status in SUPPRESSING and recipient:
        suppressed, created = SuppressedRecipient.objects.get_or_create(
            channel=Channel.EMAIL,
            recipient=recipient.strip().lower(),
            defaults={"reason": status, "provider_event_id": event_id[:200]},
        )
        if created:
            audit.record(
                "notifications.recipient.suppressed",
                obj=suppressed,
                after={"reason": status},
                actor="email-provider",
                reason=event_id,
            )
    return updated


def _already_applied(notification: Notification, event_id: str) -> bool:
    """This `svix-id` was recorded for this message (its audit row: by object, indexed)."""
    return AuditEvent.objects.filter(
        object_type=Notification._meta.label_lower,
        object_id=str(notification.pk),
        actor="email-provider",
        reason=event_id,
    ).exists()


def on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    if event.event_type in TRACKED and event.message_id:
        email_delivery_record(
            message_id=str(event.message_id),
            status=event.event_type,
            recipient=str(event.recipient or ""),
            event_id=str(event.event_id or ""),
            occurred_at=event.timestamp,
        )


@csrf_exempt
def email_tracking_webhook(request: HttpRequest) -> HttpResponse:
    """The configured ESP's tracking webhook, refused unless it can be authenticated: a signing
    secret (Resend's svix signature) or anymail's basic-auth WEBHOOK_SECRET."""
    from anymail.webhooks.resend import ResendTrackingWebhookView

    anymail = settings.ANYMAIL
    signing_secret = str(anymail.get("RESEND_SIGNING_SECRET") or "")
    if not (signing_secret or anymail.get("WEBHOOK_SECRET")):
        raise EmailWebhookNotConfigured()
    if signing_secret and (problem := svix_signature_problem(request, signing_secret)):
        raise EmailWebhookSignatureInvalid(details={"reason": problem})
    if problem := json_object_problem(request.body):
        raise EmailWebhookBodyInvalid(details={"reason": problem})
    try:
        return ResendTrackingWebhookView.as_view()(request)
    except AnymailWebhookValidationFailure as exc:
        raise EmailWebhookSignatureInvalid(details={"reason": str(exc)[:200]}) from exc
    except (KeyError, TypeError, AttributeError) as exc:
        # A signed object of the wrong shape ({}, "data": null, "to": "x"): anymail's
        # parser reads fields it assumes are there. Nothing was recorded: a 400, not a 500.
        raise EmailWebhookBodyInvalid(
            details={"reason": f"not a Resend event: {type(exc).__name__}: {exc}"[:200]}
        ) from exc


TRACKING_OPERATION: dict[str, Any] = {
    "operationId": "email_tracking_webhook",
    "summary": "The email provider's tracking events (Resend through django-anymail)",
    "description": "Resend posts delivery events, signed as Svix signs them (`svix-id`, "
    "`svix-timestamp`, `svix-signature`, verified with RESEND_SIGNING_SECRET), or with "
    "anymail's basic-auth WEBHOOK_SECRET. `email.delivered`, `email.bounced` and "
    "`email.complained` and `email.delivery_delayed` update the notification with that provider "
    "message id, in the order of their `created_at` (an older event never overrides a newer "
    "status) and once per `svix-id`; a hard bounce or a complaint suppresses the address. "
    "Other events are accepted and ignored.",
    "tags": ["webhooks"],
    "parameters": [
        {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
        for name in ("svix-id", "svix-timestamp", "svix-signature")
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["type", "data"],
                    "properties": {
                        "type": {"type": "string", "example": "email.bounced"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "data": {"type": "object", "additionalProperties": True},
                    },
                }
            }
        },
    },
    "security": [{}],
    "responses": {
        "200": {"description": "Accepted (and applied when it is a tracked event)."},
    },
}


def document_tracking_webhook(path: str) -> None:
    from opsconsole.http.schema import error_response, register_plain_route

    register_plain_route(
        path,
        "post",
        {
            **TRACKING_OPERATION,
            "responses": {
                **TRACKING_OPERATION["responses"],
                "400": error_response(
                    "400",
                    f"`{EmailWebhookSignatureInvalid.code}`: the signature failed (missing, "
                    f"malformed, stale or wrong); `{EmailWebhookBodyInvalid.code}`: the body "
                    "is no JSON object.",
                ),
                "503": error_response(
                    "503", f"`{EmailWebhookNotConfigured.code}`: no signing secret is set."
                ),
            },
        },
    )
