"""The waitlist hears about freed slots: a cancelled booking or an expired hold.

Receivers run after commit and hand the sends to a task, so the request that freed the slot
never waits on the email provider. Sends fail open: a failure is logged in communication_log
and never undoes the cancellation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from bookings.models import WaitlistEntry
from bookings.signals import booking_cancelled, booking_hold_expired
from notifications.services import communication_send
from opsconsole.workers.wakes import run_after_commit


def waitlist_notify(
    *, resource_id: int, start_time: datetime, end_time: datetime, cause: str
) -> int:
    waiting = list(
        WaitlistEntry.objects.filter(
            resource_id=resource_id,
            status=WaitlistEntry.Status.WAITING,
            start_time__lt=end_time,
            end_time__gt=start_time,
        ).order_by("id")
    )
    notified = 0
    for entry in waiting:
        log = communication_send(
            channel="email",
            to=entry.email,
            template="waitlist_slot_available",
            context={
                "resource_id": resource_id,
                "start_time": start_time.isoformat(),
                "end_time": end_time.isoformat(),
            },
            subject_type=WaitlistEntry._meta.label_lower,
            subject_id=entry.pk,
            triggered_by=cause,
            idempotency_key=f"waitlist-{entry.pk}:{cause}",
        )
        if log.status == log.Status.SENT:
            with transaction.atomic():
                WaitlistEntry.objects.filter(
                    pk=entry.pk, status=WaitlistEntry.Status.WAITING
                ).update(status=WaitlistEntry.Status.NOTIFIED, notified_at=timezone.now())
            notified += 1
    return notified


def waitlist_notify_task(
    resource_id: int, start_time: datetime, end_time: datetime, cause: str
) -> int:
    return waitlist_notify(
        resource_id=resource_id, start_time=start_time, end_time=end_time, cause=cause
    )


def _notify_later(event: dict[str, Any], cause: str) -> None:
    # A cancellation answers its request without waiting for the emails: a task sends them.
    run_after_commit(
        "bookings.waitlist.waitlist_notify_task",
        event["resource_id"],
        event["start_time"],
        event["end_time"],
        cause,
    )


@receiver(booking_cancelled)
def notify_waitlist_on_cancellation(sender: Any, **event: Any) -> None:
    _notify_later(event, f"booking.cancelled:{event['booking_id']}")


@receiver(booking_hold_expired)
def notify_waitlist_on_hold_expiry(sender: Any, **event: Any) -> None:
    _notify_later(event, f"booking.hold.expired:{event['hold_id']}")
