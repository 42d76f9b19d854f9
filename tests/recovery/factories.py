"""Integrations and their recovery items: enqueued through the service, or parked in the
state a worker would have left them."""

from __future__ import annotations

from typing import Any

import factory
from django.db import transaction
from factory.django import DjangoModelFactory

from recovery import services
from recovery.models import Integration, RecoveryItem


class IntegrationFactory(DjangoModelFactory):
    """Created through the service (validated, audited); give `endpoint_url` a stand-in
    server's address."""

    class Meta:
        model = Integration

    name = factory.Sequence(lambda n: f"integration-{n}")
    endpoint_url = "https://hooks.example.test/in"

    @classmethod
    def _create(cls, model_class: type[Integration], *args: Any, **fields: Any) -> Integration:
        return services.integration_create(**fields, actor="test")


class QueuedItemFactory(DjangoModelFactory):
    """An item enqueued as the business would: pending and due now."""

    class Meta:
        model = RecoveryItem

    integration = factory.SubFactory(IntegrationFactory)
    event_type = "booking.confirmed"
    payload = factory.LazyFunction(lambda: {"booking": 1})

    @classmethod
    def _create(cls, model_class: type[RecoveryItem], *args: Any, **fields: Any) -> RecoveryItem:
        return services.recovery_item_enqueue(**fields)


class ParkedItemFactory(DjangoModelFactory):
    """An item already in a terminal state (give `status`), as the worker would have left it:
    with its inbox fingerprint, unless `stored_fingerprint=False` (a row from before
    fingerprints were stored)."""

    class Meta:
        model = RecoveryItem

    integration = factory.SubFactory(IntegrationFactory)
    event_type = "booking.confirmed"
    payload = factory.LazyFunction(lambda: {"booking": 7})
    status = "dlq"
    next_retry_at = None
    failure_code = "HTTP_500"
    failure_detail = "HTTP 500: upstream down"
    response_snapshot = factory.LazyFunction(lambda: {"status": 500, "body": "upstream down"})
    attempt_count = 5

    @classmethod
    def _create(cls, model_class: type[RecoveryItem], *args: Any, **fields: Any) -> RecoveryItem:
        stored_fingerprint = fields.pop("stored_fingerprint", True)
        with transaction.atomic():
            item = model_class.objects.create(**fields)
            if stored_fingerprint:
                item.failure_fingerprint = item.inbox_fingerprint()
                item.save(update_fields=["failure_fingerprint"])
        return item
