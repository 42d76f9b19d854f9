"""The recovery app's failures: integration deliveries that failed or were dead-lettered."""

from __future__ import annotations

from typing import Any

from django.db.models.functions import Coalesce

from bookings.failures import booking_of_payload, payload_impact, soon_booking_ids
from bookings.models import Booking
from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureSource, Impact
from recovery.models import RecoveryItem
from recovery.services import recovery_item_replay


def _replay_delivery(item_id: int, actor: Any, reason: str) -> str:
    item = RecoveryItem.objects.get(pk=item_id)
    before = item.status
    recovery_item_replay(
        integration_id=item.integration_id, item_id=item_id, actor=actor, reason=reason
    )
    return f"{before} → replayed"


def _guard_delivery(item: RecoveryItem) -> str | None:
    booking = booking_of_payload(item.payload)
    if booking is not None and booking.status == Booking.Status.CANCELLED:
        return f"booking {booking.pk} was cancelled; delivering {item.event_type} is moot"
    return None


def _blocked_delivery(item: RecoveryItem) -> str | None:
    integration = item.integration
    if not integration.enabled:
        return f"integration {integration.name} is deleted (disabled); resolve instead"
    if integration.paused:
        return f"integration {integration.name} is paused; resume it first"
    return None


def release_ordering_key(item_id: int) -> None:
    """A resolved delivery no longer holds back the later items of its ordering key.
    (updated_at stays: it names the failure's occurrence the resolution closed.)"""
    RecoveryItem.objects.filter(pk=item_id).exclude(ordering_key="").update(ordering_key="")


failure_sources.register(
    FailureSource(
        name="integration_delivery",
        category="integration",
        app="recovery",
        failing=lambda: RecoveryItem.objects.filter(
            status__in=RecoveryItem.REPLAYABLE
        ).select_related("integration"),
        provider=lambda item: item.integration.name,
        failure_code=lambda item: item.failure_code,
        error=lambda item: item.failure_detail,
        first_seen=lambda item: item.created_at,
        last_seen=lambda item: item.last_attempt_at or item.updated_at,
        impact=lambda item: payload_impact(item.payload, Impact(10, "")),
        guard=_guard_delivery,
        predicted=lambda item: f"{item.status} → replayed",
        replay=_replay_delivery,
        fingerprint_field="failure_fingerprint",
        last_seen_expression=Coalesce("last_attempt_at", "updated_at"),
        ranks_first=lambda rows: rows.filter(payload__booking_id__in=soon_booking_ids()),
        dead_lettered=lambda rows: rows,
        on_resolved=release_ordering_key,
        blocked=_blocked_delivery,
    )
)
