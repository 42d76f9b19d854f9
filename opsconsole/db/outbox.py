"""The transactional outbox: business events written in the transaction of the change.

A service that changes business state calls `publish()` inside its own atomic block. The
registered sinks (the integration queue fans each event out to one item per subscribed
integration) write their rows in that same transaction, so a rolled-back change publishes
nothing and a committed one is already durable: a process that dies right after the commit
has lost nothing, and no relay has to run for the event to exist.

The platform defines the call; the apps that deliver events register as sinks, so the apps
that publish (bookings, payments, notifications) import no delivery code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

# The event types the services publish (issue: the outbox's first catalogue).
EVENT_TYPES = (
    "booking.confirmed",
    "booking.cancelled",
    "booking.fulfilled",
    "payment.recorded",
    "payment.succeeded",
    "refund.succeeded",
    "refund.failed",
    "voucher.redeemed",
    "voucher.voided",
    "hosted_session.completed",
    "hosted_session.abandoned",
)


@dataclass(frozen=True)
class BusinessEvent:
    event_type: str
    payload: dict[str, Any]
    event_id: str = field(default_factory=lambda: f"evt_{uuid.uuid4().hex}")
    occurred_at: str = field(default_factory=lambda: timezone.now().isoformat())


Sink = Callable[[BusinessEvent], None]
_sinks: list[Sink] = []


def register_sink(sink: Sink) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def publish(event_type: str, payload: dict[str, Any]) -> BusinessEvent:
    """Write `event_type` with its JSON payload in the current transaction."""
    if event_type not in EVENT_TYPES:
        # The catalogue is what partners subscribe to: a new type is added there first.
        raise ValueError(f"{event_type!r} is not in the outbox's EVENT_TYPES")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"event {event_type} must be published inside the changing transaction")
    event = BusinessEvent(event_type=event_type, payload=payload)
    for sink in _sinks:
        sink(event)
    return event
