"""Every write to the notification tables."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.adapters import ChannelAdapter, OutboundMessage, SendResult, channel_adapter
from notifications.email_tracking import SUPPRESSED, is_suppressed
from notifications.models import CommunicationLog, Notification, NotificationAttempt, PushToken
from opsconsole.evidence import audit
from opsconsole.failures.retry import RetryPolicy
from opsconsole.http.context import current_request_id
from opsconsole.outbound.providers import CHANNEL_SWITCHED_OFF, Mode, provider

logger = structlog.get_logger(__name__)


def communication_send(
    *,
    channel: str,
    to: str,
    template: str,
    context: dict[str, Any],
    subject_type: str,
    subject_id: str | int,
    triggered_by: str,
    idempotency_key: str,
    adapter: ChannelAdapter | None = None,
) -> CommunicationLog:
    """Send one message and log it. Fails open: a provider failure is a `failed` log row.

    The provider call runs with no transaction open; only the log row is written after.
    """
    adapter = adapter or channel_adapter(channel)
    message = OutboundMessage(
        channel=channel, to=to, template=template, context=context, idempotency_key=idempotency_key
    )
    suppressed = is_suppressed(channel, to)
    try:
        result = (
            SendResult(
                ok=False,
                provider="suppressed",
                failure_code=SUPPRESSED,
                failure_detail=f"SUPPRESSED: the address {suppressed.reason}",
            )
            if suppressed
            else adapter.send(message)
        )
    except Exception as exc:  # an adapter bug must not fail the business action either
        logger.exception("communication_adapter_crashed", channel=channel, template=template)
        result = SendResult(
            ok=False,
            provider=getattr(adapter, "provider", "unknown"),
            failure_code="adapter_error",
            failure_detail=f"{type(exc).__name__}: {exc}"[:1000],
        )
    with transaction.atomic():
        log = CommunicationLog.objects.create(
            channel=channel,
            template=template,
            recipient=to,
            status=_log_status(result),
            provider=result.provider,
            provider_message_id=result.provider_message_id,
            failure_code=result.failure_code,
            failure_detail=result.failure_detail,
            subject_type=subject_type,
            subject_id=str(subject_id),
            triggered_by=triggered_by,
            idempotency_key=idempotency_key,
            context=context,
            duration_ms=result.duration_ms,
            request_id=current_request_id(),
        )
    logger.info(
        "communication_sent" if result.ok else "communication_failed",
        channel=channel,
        template=template,
        subject_type=subject_type,
        subject_id=str(subject_id),
        failure_code=result.failure_code,
    )
    return log


def _log_status(result: SendResult) -> str:
    if result.ok:
        return CommunicationLog.Status.SENT
    if result.failure_code in (CHANNEL_SWITCHED_OFF, SUPPRESSED):
        return CommunicationLog.Status.SKIPPED
    return CommunicationLog.Status.FAILED


# ---------------------------------------------------------------------------- notifications


def notification_retry_policy() -> RetryPolicy:
    """5 attempts, exponential from 1 minute; the first retry never sooner
    (docs/runbooks/bookings-payments-notifications.md)."""
    return RetryPolicy(
        max_attempts=settings.NOTIFICATION_MAX_ATTEMPTS,
        base_seconds=settings.NOTIFICATION_BACKOFF_BASE_SECONDS,
        cap_seconds=settings.NOTIFICATION_BACKOFF_CAP_SECONDS,
        jitter="floor",
    )


@transaction.atomic
def notification_enqueue(
    *,
    channel: str,
    to: str,
    template: str,
    context: dict[str, Any],
    subject_type: str = "",
    subject_id: str | int = "",
) -> Notification:
    """Queue a message; the delivery worker sends it and retries. Callers that must fail open
    (every business action) call this inside their own try, see `notify_fail_open`. A message
    for a channel switched off on purpose is kept as SKIPPED, never sent."""
    switched_off = provider(channel).mode() == Mode.OFF
    suppressed = None if switched_off else is_suppressed(channel, to)
    skipped_because = (
        f"{CHANNEL_SWITCHED_OFF}: {channel.upper()}_PROVIDER=none"
        if switched_off
        else f"SUPPRESSED: the address {suppressed.reason}"
        if suppressed
        else ""
    )
    notification = Notification.objects.create(
        channel=channel,
        recipient=to,
        template=template,
        context=context,
        subject_type=subject_type,
        subject_id=str(subject_id),
        **(
            {
                "status": Notification.Status.SKIPPED,
                "next_retry_at": None,
                "last_error": skipped_because,
            }
            if skipped_because
            else {}
        ),
    )
    audit.record("notifications.notification.queued", obj=notification, after=notification.state())
    return notification


def notify_fail_open(**kwargs: Any) -> Notification | None:
    """Queue a notification without ever failing the business action that caused it."""
    try:
        return notification_enqueue(**kwargs)
    except Exception:
        logger.exception("notification_enqueue_failed", template=kwargs.get("template"))
        return None


def notification_deliver(
    *, notification_id: int, lease_owner: str, adapter: ChannelAdapter | None = None
) -> str:
    notification = Notification.objects.get(pk=notification_id)
    if notification.lease_owner != lease_owner or notification.status not in Notification.SENDABLE:
        return "lease_lost"
    adapter = adapter or channel_adapter(notification.channel)
    message = OutboundMessage(
        channel=notification.channel,
        to=notification.recipient,
        template=notification.template,
        context=notification.context,
        idempotency_key=notification.idempotency_key,
    )
    try:
        result = adapter.send(message)
    except Exception as exc:
        logger.exception("notification_adapter_crashed", notification_id=notification_id)
        result = SendResult(
            ok=False, provider="unknown", failure_code="adapter_error", failure_detail=repr(exc)
        )
    return _notification_record_attempt(
        notification_id=notification_id, lease_owner=lease_owner, result=result
    )


@transaction.atomic
def _notification_record_attempt(
    *, notification_id: int, lease_owner: str, result: SendResult
) -> str:
    notification = Notification.objects.select_for_update().get(pk=notification_id)
    if notification.lease_owner != lease_owner or notification.status not in Notification.SENDABLE:
        return "lease_lost"
    before = notification.state()
    number = notification.attempt_count + 1
    error = f"{result.failure_code}: {result.failure_detail}".strip(": ") if not result.ok else ""
    policy = notification_retry_policy()
    if result.ok:
        notification.mark_sent(external_id=result.provider_message_id)
        outcome = "sent"
    elif result.retryable and not policy.exhausted(number, notification.max_attempts):
        notification.schedule_retry(
            error=error,
            next_retry_at=policy.next_retry_at(number, retry_after=result.retry_after_seconds),
        )
        outcome = "retry_scheduled"
    else:
        notification.dead_letter(error=error)
        outcome = "dead_lettered"
    notification.save()
    NotificationAttempt.objects.create(
        notification=notification,
        attempt_number=number,
        succeeded=result.ok,
        error=error,
        http_status=result.http_status,
        duration_ms=result.duration_ms,
        response_body=result.response_body,
    )
    audit.record(
        f"notifications.notification.{outcome}",
        obj=notification,
        before=before,
        after=notification.state(),
        actor="worker:notification_delivery_worker",
        metadata={"attempt": number, "http_status": result.http_status},
    )
    return outcome


@transaction.atomic
def notification_requeue(*, notification_id: int, actor: audit.Actor, reason: str) -> Notification:
    """Operator replay of a dead-lettered notification: a fresh attempt budget."""
    notification = Notification.objects.select_for_update().get(pk=notification_id)
    before = notification.state()
    notification.requeue()
    notification.save()
    audit.record(
        "notifications.notification.requeued",
        obj=notification,
        before=before,
        after=notification.state(),
        actor=actor,
        reason=reason,
    )
    return notification


# ---------------------------------------------------------------------------- push

TOKEN_NOT_REGISTERED = "messaging/registration-token-not-registered"  # FCM's UNREGISTERED too


def push_send(
    *,
    user_id: int,
    title: str,
    body: str,
    data: dict[str, Any] | None = None,
    adapter: ChannelAdapter | None = None,
) -> dict[str, int]:
    """Send to each valid token; a not-registered answer marks the token invalid
    (docs/runbooks/bookings-payments-notifications.md).
    Fails open: returns counts, never raises for a provider failure."""
    adapter = adapter or channel_adapter("push")
    counts = {"sent": 0, "failed": 0, "invalidated": 0}
    for token in PushToken.objects.filter(user_id=user_id, valid=True):
        result = adapter.send(
            OutboundMessage(
                channel="push",
                to=token.token,
                template="push",
                context={"title": title, "body": body, "data": data or {}},
                idempotency_key=f"push:{token.pk}:{uuid.uuid4().hex}",
            )
        )
        if result.ok:
            counts["sent"] += 1
            continue
        counts["failed"] += 1
        if result.provider_error_code == TOKEN_NOT_REGISTERED:
            with transaction.atomic():
                PushToken.objects.filter(pk=token.pk, valid=True).update(
                    valid=False, invalidated_at=timezone.now()
                )
            counts["invalidated"] += 1
    push_tokens_cleanup(user_id=user_id)
    return counts


def push_tokens_cleanup(*, user_id: int | None = None) -> int:
    """More than 5 invalid tokens: delete the invalid ones older than 7 days
    (docs/runbooks/bookings-payments-notifications.md)."""
    users = (
        [user_id]
        if user_id is not None
        else PushToken.objects.filter(valid=False).values_list("user_id", flat=True).distinct()
    )
    deleted = 0
    cutoff = timezone.now() - timedelta(days=settings.PUSH_INVALID_TOKEN_MAX_AGE_DAYS)
    for uid in users:
        invalid = PushToken.objects.filter(user_id=uid, valid=False)
        if invalid.count() > settings.PUSH_INVALID_TOKENS_CLEANUP_THRESHOLD:
            deleted += invalid.filter(invalidated_at__lt=cutoff).delete()[0]
    if deleted:
        logger.info("push_tokens_cleaned_up", deleted=deleted, user_id=user_id)
    return deleted
