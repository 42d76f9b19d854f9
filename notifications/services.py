"""Every write to the notification tables."""

from __future__ import annotations

from typing import Any

import structlog
from django.db import transaction

from notifications.adapters import ChannelAdapter, OutboundMessage, SendResult, channel_adapter
from notifications.models import CommunicationLog
from opsconsole.context import current_request_id

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
    try:
        result = adapter.send(message)
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
            status=CommunicationLog.Status.SENT if result.ok else CommunicationLog.Status.FAILED,
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
