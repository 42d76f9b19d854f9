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


class UserGone(LookupError):
    pass


def _name_state(user: User) -> dict[str, str]:
    return {"first_name": user.first_name}


@pytest.mark.django_db
def test_an_audited_update_locks_changes_saves_and_audits_in_one_go(operator):
    def rename(user: User) -> list[str]:
        user.first_name = "Ana"
        return ["first_name"]

    with transaction.atomic():
        changed = audit.audited_update(
            User.objects.filter(pk=operator.pk),
            not_found=UserGone,
            change=rename,
            state=_name_state,
            event="test.renamed",
            actor=operator,
            reason="typo",
        )
    assert User.objects.get(pk=operator.pk).first_name == changed.first_name == "Ana"
    event = AuditEvent.objects.get(event="test.renamed")
    before = {"first_name": operator.first_name}
    assert (event.before_state, event.after_state) == (before, {"first_name": "Ana"})
    assert (event.object_id, event.reason) == (str(operator.pk), "typo")


@pytest.mark.django_db
def test_an_audited_update_with_nothing_to_change_writes_nothing_and_a_missing_row_raises(
    operator,
):
    with transaction.atomic():
        audit.audited_update(
            User.objects.filter(pk=operator.pk),
            not_found=UserGone,
            change=lambda user: None,
            state=_name_state,
            event="test.unchanged",
            actor=operator,
        )
        with pytest.raises(UserGone):
            audit.audited_update(
                User.objects.filter(pk=-1),
                not_found=UserGone,
                change=lambda user: ["first_name"],
                state=_name_state,
                event="test.missing",
                actor=operator,
            )
    assert not AuditEvent.objects.filter(event__in=["test.unchanged", "test.missing"]).exists()


@pytest.mark.django_db(transaction=True)
def test_an_audited_update_refuses_to_run_outside_a_transaction(operator):
    with pytest.raises(RuntimeError, match="inside the writing transaction"):
        audit.audited_update(
            User.objects.filter(pk=operator.pk),
            not_found=UserGone,
            change=lambda user: ["first_name"],
            state=_name_state,
            event="test.outside",
            actor=operator,
        )


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
