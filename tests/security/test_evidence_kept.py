"""Evidence is kept: deleting an item never takes its attempts, edits or audit rows along."""

from __future__ import annotations

import pytest
from django.db.models import ProtectedError

from opsconsole.models import AuditEvent
from recovery.models import DeliveryAttempt, RecoveryItem
from tests.recovery.factories import QueuedItemFactory
from tests.workers import deliver


@pytest.mark.django_db
def test_an_item_with_attempts_cannot_be_deleted(integration, httpserver):
    httpserver.expect_request("/hooks/crm").respond_with_data("down", status=500)
    item = QueuedItemFactory(integration=integration)
    deliver()
    assert DeliveryAttempt.objects.filter(item=item).count() == 1
    with pytest.raises(ProtectedError):
        RecoveryItem.objects.filter(pk=item.pk).delete()
    assert DeliveryAttempt.objects.filter(item=item).count() == 1
    assert AuditEvent.objects.filter(object_id=str(item.pk)).exists()


@pytest.mark.django_db
def test_every_evidence_relation_protects(django_db_setup):
    from django.apps import apps
    from django.db import models

    evidence = {
        ("recovery", "deliveryattempt", "item"),
        ("recovery", "payloadedit", "item"),
        ("recovery", "bulkactionitem", "action"),
        ("notifications", "notificationattempt", "notification"),
        ("notifications", "campaigntarget", "campaign"),
    }
    for app_label, model_name, field_name in evidence:
        field = apps.get_model(app_label, model_name)._meta.get_field(field_name)
        assert field.remote_field.on_delete is models.PROTECT, (model_name, field_name)
