"""The bookings app's failures: cancellations stuck half way (CANCELLING). Also the rule the
other apps' sources rank by: a failure that touches a booking starting soon comes first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from django.utils import timezone

from bookings.models import Booking, Bundle, CatalogChange, Fulfillment, Nudge
from bookings.nudges import nudges_requeue
from bookings.services import booking_cancel
from bookings.services.catalog import catalog_change_move
from bookings.services.fulfilment import fulfilment_retry
from notifications import failures as notification_failures
from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureSource, Impact
from opsconsole.http.inputs import is_id

SOON = timedelta(hours=24)


def _cancelled_booking(subject_id: str) -> str | None:
    """A message about a cancelled booking is not sent again (the notification's guard)."""
    if not is_id(subject_id):
        return None
    booking = Booking.objects.filter(pk=int(subject_id)).first()
    if booking is not None and booking.status == Booking.Status.CANCELLED:
        return f"booking {booking.pk} was cancelled"
    return None


notification_failures.subject_guards["bookings.booking"] = _cancelled_booking


def booking_of_payload(payload: Any) -> Booking | None:
    booking_id = payload.get("booking_id") if isinstance(payload, dict) else None
    if not isinstance(booking_id, int):
        return None
    return Booking.objects.filter(pk=booking_id).first()


def soon_booking_ids() -> list[int]:
    """Live bookings that start within SOON: a failure that touches one ranks first."""
    now = timezone.now()
    return list(
        Booking.objects.exclude(status=Booking.Status.CANCELLED)
        .filter(start_time__gte=now, start_time__lte=now + SOON)
        .values_list("pk", flat=True)
    )


_soon_ids: ContextVar[frozenset[int] | None] = ContextVar("soon_booking_ids", default=None)


@failure_sources.register_batch_context
@contextmanager
def soon_bookings_read_once() -> Iterator[None]:
    """Inside failure_sources.batch(): the bookings starting soon, read once for the batch."""
    token = _soon_ids.set(frozenset(soon_booking_ids()))
    try:
        yield
    finally:
        _soon_ids.reset(token)


def payload_impact(payload: Any, base: Impact) -> Impact:
    """booking_impact of the booking a payload names; inside failure_sources.batch() with
    no query (the same rule: a live booking starting within SOON)."""
    soon = _soon_ids.get()
    if soon is None:
        return booking_impact(booking_of_payload(payload), base)
    booking_id = payload.get("booking_id") if isinstance(payload, dict) else None
    if isinstance(booking_id, int) and booking_id in soon:
        return Impact(100, f"booking {booking_id} starts within 24 hours")
    return base


def booking_impact(booking: Booking | None, base: Impact) -> Impact:
    now = timezone.now()
    live = booking is not None and booking.status != Booking.Status.CANCELLED
    if booking is not None and live and now <= booking.start_time <= now + SOON:
        return Impact(100, f"booking {booking.pk} starts within 24 hours")
    return base


def _replay_cancellation(booking_id: int, actor: Any, reason: str) -> str:
    result = booking_cancel(booking_id=booking_id, actor=actor, reason=reason)
    return f"CANCELLING → {result.booking.status}"


failure_sources.register(
    FailureSource(
        name="cancellation",
        category="booking",
        app="bookings",
        failing=lambda: Booking.objects.filter(status=Booking.Status.CANCELLING),
        provider=lambda b: "bookings",
        failure_code=lambda b: b.cancellation_step or "cancelling",
        error=lambda b: b.cancellation_error,
        first_seen=lambda b: b.updated_at,
        last_seen=lambda b: b.updated_at,
        impact=lambda b: booking_impact(b, Impact(40, "a cancellation is half done")),
        guard=lambda b: None,
        predicted=lambda b: "CANCELLING → CANCELLED (the saga resumes; refund key reused)",
        replay=_replay_cancellation,
        moves_money=True,
    )
)


def _retry_fulfilment(fulfillment_id: int, actor: Any, reason: str) -> str:
    fulfillment = fulfilment_retry(fulfillment_id=fulfillment_id, actor=actor, reason=reason)
    return f"PARKED → {fulfillment.status} (the fulfillment processor takes it now)"


failure_sources.register(
    FailureSource(
        name="fulfillment",
        category="booking",
        app="bookings",
        failing=lambda: Fulfillment.objects.filter(status=Fulfillment.Status.PARKED),
        provider=lambda f: "fulfillment_processor",
        failure_code=lambda f: f.failure_code,
        error=lambda f: f.last_error,
        first_seen=lambda f: f.created_at,
        last_seen=lambda f: f.updated_at,
        impact=lambda f: booking_impact(
            Booking.objects.filter(pk=f.booking_id).first(),
            Impact(60, "a paid booking has no entry code or confirmation"),
        ),
        guard=lambda f: None,
        predicted=lambda f: "PARKED → PENDING (fulfilled on the processor's next claim)",
        replay=_retry_fulfilment,
    )
)


def _retry_catalog_change(change_id: int, actor: Any, reason: str) -> str:
    change = catalog_change_move(change_id=change_id, move="retry", actor=actor, reason=reason)
    return f"→ {change.status} (the catalog scheduler applies it on its next run)"


failure_sources.register(
    FailureSource(
        name="catalog_change",
        category="booking",
        app="bookings",
        failing=lambda: CatalogChange.objects.filter(
            status__in=[CatalogChange.Status.FAILING, CatalogChange.Status.PARKED]
        ),
        provider=lambda c: "catalog_scheduler",
        failure_code=lambda c: c.failure_code,
        error=lambda c: c.last_error,
        first_seen=lambda c: c.apply_at,
        last_seen=lambda c: c.updated_at,
        impact=lambda c: Impact(50, "the catalog is not as scheduled"),
        guard=lambda c: None,
        predicted=lambda c: f"{c.status} → SCHEDULED (applied on the scheduler's next run)",
        replay=_retry_catalog_change,
        first_seen_field="apply_at",
    )
)


def _recheck_bundle(bundle_id: int, actor: Any, reason: str) -> str:
    Bundle.objects.filter(pk=bundle_id).update(next_check_at=timezone.now())
    return "checked again on the guardrail's next run (sells again once its parts are sound)"


failure_sources.register(
    FailureSource(
        name="bundle",
        category="booking",
        app="bookings",
        failing=lambda: Bundle.objects.filter(status=Bundle.Status.STOPPED),
        provider=lambda b: "bundle_guardrail_worker",
        failure_code=lambda b: b.stop_code,
        error=lambda b: b.stop_reason,
        first_seen=lambda b: b.stopped_at or b.updated_at,
        last_seen=lambda b: b.updated_at,
        impact=lambda b: Impact(70, "a bundle has stopped selling"),
        guard=lambda b: None,
        predicted=lambda b: "checked again now: sells once its parts are sound",
        replay=_recheck_bundle,
        replay_resolves=False,
    )
)


def _requeue_nudge(nudge_id: int, actor: Any, reason: str) -> str:
    done = nudges_requeue(nudge_ids=[nudge_id], actor=actor, reason=reason)
    return "PARKED → PENDING (sent on the dispatch's next run)" if done else "not parked any more"


failure_sources.register(
    FailureSource(
        name="nudge",
        category="notification",
        app="bookings",
        failing=lambda: Nudge.objects.filter(status=Nudge.Status.PARKED),
        provider=lambda n: "email",
        failure_code=lambda n: n.failure_code,
        error=lambda n: n.last_error,
        first_seen=lambda n: n.created_at,
        last_seen=lambda n: n.updated_at,
        impact=lambda n: Impact(10, "a loyalty or onboarding nudge did not go out"),
        guard=lambda n: None,
        predicted=lambda n: "PARKED → PENDING (sent once, never twice)",
        replay=_requeue_nudge,
    )
)
