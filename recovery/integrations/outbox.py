"""The integration queue as the outbox's sink: each business event becomes one delivery per
integration subscribed to its type, written in the publishing transaction."""

from __future__ import annotations

from opsconsole.db.outbox import BusinessEvent
from recovery.models import Integration
from recovery.services.delivery import recovery_item_enqueue


def subscribed_integrations(event_type: str) -> list[Integration]:
    """Enabled, not deleted, subscribed to the type (or to "*"). Paused ones are included:
    pausing holds deliveries, it does not drop events. Integrations are few, so the filter
    on the subscription list runs here rather than in a JSON query every database speaks."""
    live = Integration.objects.filter(enabled=True, deleted_at__isnull=True)
    return [integration for integration in live if integration.subscribes_to(event_type)]


def fan_out(event: BusinessEvent) -> None:
    for integration in subscribed_integrations(event.event_type):
        recovery_item_enqueue(
            integration=integration,
            event_type=event.event_type,
            payload=event.payload,
            event_id=event.event_id,
            actor="outbox",
        )
