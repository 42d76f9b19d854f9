from __future__ import annotations

import pytest
from django.db import transaction

from recovery import services
from recovery.models import Integration, RecoveryItem


@pytest.fixture
def integration(db: None, httpserver) -> Integration:
    return services.integration_create(
        name="crm", endpoint_url=httpserver.url_for("/hooks/crm"), actor="test"
    )


def enqueue(integration: Integration, payload: dict | None = None) -> RecoveryItem:
    return services.recovery_item_enqueue(
        integration=integration, event_type="booking.confirmed", payload=payload or {"booking": 1}
    )


def park(
    integration: Integration, status: str, *, stored_fingerprint: bool = True, **fields
) -> RecoveryItem:
    """An item already in a terminal state, as the worker would have left it (with its inbox
    fingerprint, unless `stored_fingerprint=False`: a row from before fingerprints)."""
    with transaction.atomic():
        item = RecoveryItem.objects.create(
            integration=integration,
            event_type="booking.confirmed",
            payload=fields.pop("payload", {"booking": 7}),
            status=status,
            next_retry_at=None,
            failure_code=fields.pop("failure_code", "HTTP_500"),
            failure_detail=fields.pop("failure_detail", "HTTP 500: upstream down"),
            response_snapshot={"status": 500, "body": "upstream down"},
            attempt_count=fields.pop("attempt_count", 5),
            **fields,
        )
        if stored_fingerprint:
            item.failure_fingerprint = item.inbox_fingerprint()
            item.save(update_fields=["failure_fingerprint"])
        return item
