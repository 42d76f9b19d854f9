"""Search as operators search: a delivery by its event id, a booking id, a payload value
(a customer's email) or the partner's error text; an audit event by its object or by the
words of an operator's reason. Each search is served by an index (shown by the plan)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from opsconsole.evidence import audit
from recovery.models import RecoveryItem
from tests.recovery.factories import ParkedItemFactory, QueuedItemFactory

ITEMS = "/admin/recovery/recoveryitem/"
EVENTS = "/admin/platform/auditevent/"


@pytest.fixture
def root(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-123456"))
    return client


def found(client: Client, url: str, term: str) -> set[int]:
    response = client.get(url, {"q": term})
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


@pytest.mark.django_db
def test_deliveries_by_event_id_booking_payload_value_and_error_text(root, integration):
    ana = ParkedItemFactory(
        integration=integration,
        status="dlq",
        payload={"booking_id": 4411, "email": "ana.silva@example.com"},
        failure_detail="HTTP 422: customer ana.silva@example.com has no account 100%",
    )
    RecoveryItem.objects.filter(pk=ana.pk).update(event_id="evt_9f2c")
    other = ParkedItemFactory(
        integration=integration,
        status="failed",
        payload={"booking_id": 12},
        failure_detail="HTTP 503",
    )
    delivered = QueuedItemFactory(
        integration=integration, payload={"email": "ana.silva@example.com"}
    )
    assert found(root, ITEMS, "evt_9f2c") == {ana.pk}
    assert found(root, ITEMS, "4411") == {ana.pk}
    assert found(root, ITEMS, str(other.pk)) == {other.pk}
    # Among open failures: a queued delivery to the same customer is not a failure to work.
    assert found(root, ITEMS, "ana.silva@EXAMPLE.com") == {ana.pk}
    assert delivered.pk not in found(root, ITEMS, "ana.silva")
    assert found(root, ITEMS, "has no account") == {ana.pk}
    assert found(root, ITEMS, "t 100%") == {ana.pk}  # a wildcard typed is a character
    assert found(root, ITEMS, "%") == set()
    assert found(root, ITEMS, "nothing like this") == set()


@pytest.mark.django_db
def test_audit_events_by_object_and_by_reason_words(root):
    audit.record(
        "test.thing.changed",
        object_type="recovery.recoveryitem",
        object_id=42,
        actor="otto",
        reason="Partner CRM fixed their certificate",
    )
    audit.record(
        "test.thing.changed", object_type="recovery.recoveryitem", object_id=43, actor="worker:x"
    )
    by_object = found(root, EVENTS, "recovery.recoveryitem:43")
    by_words = found(root, EVENTS, "crm FIXED")
    assert len(by_object) == 1 and len(by_words) == 1 and by_object != by_words


@pytest.mark.django_db
def test_each_text_search_is_served_by_its_trigram_index(integration):
    from opsconsole.db.text_search import as_text, contains_pattern

    # Enough open failures that an index is worth the planner's while.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO recovery_recoveryitem (integration_id, event_type, payload, status, "
            "attempt_count, max_attempts, replay_count, next_retry_at, lease_owner, "
            "failure_code, failure_detail, failure_fingerprint, request_snapshot, "
            "response_snapshot, event_id, ordering_key, request_id, traceparent, created_at, "
            "updated_at) SELECT %s, 'booking.confirmed', jsonb_build_object('email', "
            "'c' || n || '@example.com'), 'dlq', 5, 5, 0, NULL, '', 'HTTP_422', "
            "'HTTP 422: no customer ' || md5(n::text), 'f', '{}', '{}', '', '', '', '', "
            "now(), now() FROM generate_series(1, 20000) AS n",
            [integration.pk],
        )
        # As autovacuum would: new rows wait in each GIN index's pending list, which the
        # planner prices as a scan of it, until merged.
        for index in ("recovery_item_open_detail_trgm", "recovery_item_open_payload_trgm"):
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
        cursor.execute(
            "INSERT INTO platform_auditevent (event, object_type, object_id, actor, reason, "
            "request_id, server_request_id, traceparent, metadata, created_at) "
            "SELECT 'test.thing.changed', 'x', n::text, 'otto', 'because ' || md5(n::text), "
            "'', '', '', '{}', now() FROM generate_series(1, 20000) AS n"
        )
        cursor.execute("SELECT gin_clean_pending_list('audit_reason_trgm'::regclass)")
        cursor.execute("ANALYZE platform_auditevent")
        cursor.execute("ANALYZE recovery_recoveryitem")
    pattern = contains_pattern("ana.silva")
    searches = {
        "recovery_item_open_detail_trgm": RecoveryItem.objects.filter(
            status__in=("failed", "dlq"), failure_detail__ilike=pattern
        ),
        "recovery_item_open_payload_trgm": RecoveryItem.objects.alias(
            payload_text=as_text("payload")
        ).filter(status__in=("failed", "dlq"), payload_text__ilike=pattern),
    }
    from opsconsole.models import AuditEvent

    searches["audit_reason_trgm"] = AuditEvent.objects.exclude(reason="").filter(
        reason__ilike=pattern
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for index, queryset in searches.items():
            assert index in queryset.explain(), index
