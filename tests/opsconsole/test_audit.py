from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from opsconsole.evidence import audit
from opsconsole.models import AuditEvent


@pytest.mark.django_db(transaction=True)
def test_it_refuses_an_audit_row_outside_the_writing_transaction():
    with pytest.raises(RuntimeError, match="inside the writing transaction"):
        audit.record("test.outside", object_type="x", object_id=1)
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_it_rolls_back_the_audit_row_with_the_change():
    with pytest.raises(ValueError), transaction.atomic():
        audit.record("test.rolled_back", object_type="x", object_id=1, before={"a": 1})
        raise ValueError("the change failed")
    assert not AuditEvent.objects.filter(event="test.rolled_back").exists()


@pytest.mark.django_db
def test_it_records_before_and_after_state_actor_and_reason(operator):
    with transaction.atomic():
        event = audit.record(
            "test.changed",
            obj=operator,
            before={"status": "failed"},
            after={"status": "replayed"},
            actor=operator,
            reason="upstream fixed",
        )
    event.refresh_from_db()
    assert (event.object_type, event.object_id) == ("auth.user", str(operator.pk))
    assert event.before_state == {"status": "failed"}
    assert event.after_state == {"status": "replayed"}
    assert (event.actor, event.actor_user, event.reason) == ("operator", operator, "upstream fixed")


@pytest.mark.django_db
def test_the_admin_lists_audit_events_read_only_and_finds_them_by_request_id(client):
    admin = User.objects.create_superuser("root", "root@example.test", "pw-123456")
    with transaction.atomic():
        audit.record("test.first", object_type="x", object_id=1, request_id="find-me-42")
        audit.record("test.second", object_type="x", object_id=2, request_id="other-id")
    client.force_login(admin)
    found = client.get("/admin/platform/auditevent/", {"q": "find-me-42"})
    assert found.status_code == 200
    assert [e.event for e in found.context["cl"].result_list] == ["test.first"]
    event = AuditEvent.objects.get(event="test.first")
    assert client.get(f"/admin/platform/auditevent/{event.pk}/change/").status_code == 200
    delete = client.post(f"/admin/platform/auditevent/{event.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert client.get("/admin/platform/auditevent/add/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
