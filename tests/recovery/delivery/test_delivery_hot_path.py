"""The delivery worker's hot path: one-statement claim, atomic outcome, draining runs."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from werkzeug import Request, Response

from opsconsole.models import AuditEvent, WorkerStatus
from opsconsole.workers import run_upkeep
from opsconsole.workers.switches import worker_enabled, worker_switch_set
from recovery import tasks
from recovery.models import DeliveryAttempt, ProviderCircuit, RecoveryItem
from recovery.workers import IntegrationDeliveryWorker
from tests.recovery.factories import QueuedItemFactory
from tests.workers import claimed_ids, deliver

PATH = "/hooks/crm"


def delivery_worker(**kwargs: int) -> IntegrationDeliveryWorker:
    return IntegrationDeliveryWorker(**kwargs)


@pytest.mark.django_db(transaction=True)
def test_an_outcome_whose_lease_was_taken_writes_no_item_attempt_or_audit_row(
    integration, httpserver
):
    item = QueuedItemFactory(integration=integration)
    audit_rows = AuditEvent.objects.count()

    def lease_taken_mid_call(request: Request) -> Response:
        # While the call is in flight, the lease runs out and worker-b claims the item.
        RecoveryItem.objects.filter(pk=item.pk).update(
            lease_owner="worker-b", lease_expires_at=timezone.now() + timedelta(minutes=5)
        )
        return Response("{}", content_type="application/json")

    httpserver.expect_oneshot_request(PATH).respond_with_handler(lease_taken_mid_call)

    summary = deliver()

    assert dict(summary.outcomes) == {"lease_lost": 1}
    assert len(httpserver.log) == 1  # the call was made; its outcome is what is dropped
    item.refresh_from_db()
    assert (item.status, item.attempt_count, item.lease_owner) == ("pending", 0, "worker-b")
    assert DeliveryAttempt.objects.count() == 0
    assert AuditEvent.objects.count() == audit_rows

    # The next holder's outcome lands, with its attempt and audit row.
    RecoveryItem.objects.filter(pk=item.pk).update(lease_expires_at=timezone.now())
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    assert dict(deliver().outcomes) == {"succeeded": 1}
    item.refresh_from_db()
    assert (item.status, item.attempt_count, item.lease_owner) == ("succeeded", 1, "")
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.item_id, attempt.number, attempt.http_status) == (item.pk, 1, 200)
    assert attempt.lease_owner.startswith("integration_delivery_worker:")
    assert attempt.request_snapshot["headers"]["Idempotency-Key"] == item.delivery_idempotency_key
    event = AuditEvent.objects.get(event="platform.integration.recovery.delivered")
    assert event.object_id == str(item.pk)
    assert (event.before_state["status"], event.after_state["status"]) == ("pending", "succeeded")
    assert event.metadata == {"attempt": 1, "http_status": 200}
    assert event.actor == "worker:integration_delivery_worker"


@pytest.mark.django_db
def test_the_claim_takes_the_oldest_due_first_and_never_a_leased_item(integration):
    now = timezone.now()
    items = [QueuedItemFactory(integration=integration) for _ in range(4)]
    for item, minutes_ago in zip(items, (3, 1, 2, -5), strict=True):
        RecoveryItem.objects.filter(pk=item.pk).update(
            next_retry_at=now - timedelta(minutes=minutes_ago)
        )
    worker = delivery_worker()

    assert claimed_ids(worker, "a", limit=2) == [items[0].pk, items[2].pk]
    assert claimed_ids(worker, "b", limit=10) == [items[1].pk]  # the fourth is not due
    assert claimed_ids(worker, "c", limit=10) == []
    leases = dict(RecoveryItem.objects.values_list("pk", "lease_owner"))
    assert leases == {items[0].pk: "a", items[1].pk: "b", items[2].pk: "a", items[3].pk: ""}


@pytest.mark.smoke
@pytest.mark.django_db
def test_a_scheduled_run_drains_batch_after_batch(integration, httpserver, settings):
    settings.WORKER_BATCH_SIZE = 2
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    for _ in range(7):
        QueuedItemFactory(integration=integration)

    summary = tasks.run_integration_delivery_worker()

    assert (summary["claimed"], summary["batches"]) == (7, 4)
    assert summary["outcomes"] == {"succeeded": 7}
    assert RecoveryItem.objects.filter(status="succeeded").count() == 7
    status = WorkerStatus.objects.get(name="integration_delivery_worker")
    assert (status.runs_total, status.items_processed_total) == (1, 7)


@pytest.mark.django_db
def test_an_unscheduled_run_takes_one_batch(integration, httpserver):
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    for _ in range(5):
        QueuedItemFactory(integration=integration)
    summary = delivery_worker(batch_size=2).run_once(triggered_by="test")
    assert (summary.claimed, summary.batches) == (2, 1)
    assert RecoveryItem.objects.filter(status="pending").count() == 3


@pytest.mark.django_db
def test_a_draining_run_stops_at_its_time_budget(integration, httpserver):
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    for _ in range(6):
        QueuedItemFactory(integration=integration)

    summary = delivery_worker(batch_size=1).run_once(triggered_by="test", drain_seconds=0.000001)

    assert (summary.claimed, summary.batches) == (1, 1)
    assert RecoveryItem.objects.filter(status="pending").count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_draining_run_stops_when_the_kill_switch_is_flipped(
    integration, httpserver, operator, monkeypatch, settings
):
    monkeypatch.setattr(run_upkeep, "SWITCH_RECHECK_SECONDS", 0.0)
    settings.INTEGRATION_DELIVERY_IN_FLIGHT = 1
    settings.INTEGRATION_DELIVERY_CONCURRENCY = 1

    def switched_off_during_the_first_call(request: Request) -> Response:
        worker_switch_set(
            name="integration_delivery_worker",
            enabled=False,
            actor=operator,
            reason="incident: endpoint misbehaving",
        )
        return Response("{}", content_type="application/json")

    httpserver.expect_oneshot_request(PATH).respond_with_handler(switched_off_during_the_first_call)
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    for _ in range(5):
        QueuedItemFactory(integration=integration)

    summary = IntegrationDeliveryWorker.as_scheduled().run_once(
        triggered_by="schedule", drain_seconds=30
    )

    assert not worker_enabled("integration_delivery_worker")
    assert (summary.claimed, summary.batches) == (1, 1)  # the call in flight ends, no more
    assert len(httpserver.log) == 1
    assert RecoveryItem.objects.filter(status="pending", lease_owner="").count() == 4


@pytest.mark.django_db
def test_a_draining_circuits_quota_holds_across_the_batches_of_one_run(
    integration, httpserver, settings
):
    settings.CIRCUIT_DRAIN_PER_RUN = 2
    ProviderCircuit.objects.create(integration=integration, state=ProviderCircuit.State.DRAINING)
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    for _ in range(5):
        QueuedItemFactory(integration=integration)

    summary = delivery_worker(batch_size=1).run_once(triggered_by="schedule", drain_seconds=30)

    assert summary.claimed == 2
    assert len(httpserver.log) == 2
    assert RecoveryItem.objects.filter(status="pending").count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_run_with_several_processors_delivers_each_item_exactly_once(
    integration, httpserver, settings
):
    settings.WORKER_BATCH_SIZE = 3
    settings.INTEGRATION_DELIVERY_CONCURRENCY = 3
    settings.INTEGRATION_DELIVERY_IN_FLIGHT = 1  # processors as threads, one call each
    hits: Counter = Counter()
    lock = threading.Lock()

    def count(request: Request) -> Response:
        time.sleep(0.01)  # long enough for the processors to overlap
        with lock:
            hits[request.headers["Idempotency-Key"]] += 1
        return Response("{}", content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(count)
    items = [QueuedItemFactory(integration=integration, payload={"n": n}) for n in range(30)]

    summary = tasks.run_integration_delivery_worker()

    assert summary["claimed"] == 30
    assert summary["outcomes"] == {"succeeded": 30}
    assert len(hits) == 30 and set(hits.values()) == {1}
    assert DeliveryAttempt.objects.count() == 30
    owners = set(DeliveryAttempt.objects.values_list("lease_owner", flat=True))
    assert len(owners) > 1  # more than one processor took part
    assert RecoveryItem.objects.filter(status="succeeded").count() == len(items)
    status = WorkerStatus.objects.get(name="integration_delivery_worker")
    assert (status.runs_total, status.items_processed_total) == (1, 30)


@pytest.mark.django_db
def test_the_prepared_claim_keeps_its_plan_instead_of_planning_every_claim(integration):
    """The claim is prepared once per connection; PostgreSQL keeps a plan for it once the
    kept plan costs what a fresh one does. With its states bound as parameters it could not
    use the due-items partial index in a kept plan, so it was planned again on every claim."""
    from django.db import connection

    from recovery import services

    if connection.settings_dict.get("TRANSACTION_POOLING"):
        pytest.skip("behind a transaction pooler no statement is prepared (fetch_prepared)")
    QueuedItemFactory.create_batch(10, integration=integration)
    for _ in range(10):
        assert len(services.recovery_items_claim_due(owner="t", limit=1, lease_seconds=60)) == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE 'WITH due (claimed_id, integration_id)%%'"
        )
        ((kept, fresh),) = cursor.fetchall()
    # PostgreSQL makes five fresh plans before it weighs keeping one; then it keeps one.
    assert kept >= 1
    assert fresh <= 5
