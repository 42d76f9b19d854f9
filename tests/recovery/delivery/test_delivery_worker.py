from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from opsconsole.models import AuditEvent, WorkerStatus
from opsconsole.workers.switches import worker_switch_set
from recovery import services
from recovery.errors import LeaseLost
from recovery.models import DeliveryAttempt, Integration, RecoveryItem
from recovery.workers import IntegrationDeliveryWorker
from tests.recovery.factories import QueuedItemFactory
from tests.workers import claimed_ids, deliver

PATH = "/hooks/crm"


def make_due(item: RecoveryItem) -> None:
    """Skip the backoff wait: the item's retry time is now."""
    RecoveryItem.objects.filter(pk=item.pk).update(next_retry_at=timezone.now())


def events_for(item: RecoveryItem) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="recovery.recoveryitem", object_id=str(item.pk))
        .order_by("id")
        .values_list("event", flat=True)
    )


@pytest.mark.smoke
@pytest.mark.django_db
def test_it_delivers_a_pending_item_with_an_idempotency_key(integration, httpserver):
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_json({"ok": True})
    item = QueuedItemFactory(integration=integration, payload={"booking": 42})
    summary = deliver()
    item.refresh_from_db()
    assert summary.outcomes == {"succeeded": 1}
    assert item.status == "succeeded"
    assert item.attempt_count == 1
    request, _ = httpserver.log[0]
    assert request.json == {"booking": 42}
    assert request.headers["Idempotency-Key"] == f"recovery-item-{item.pk}"
    assert item.response_snapshot["status"] == 200
    assert DeliveryAttempt.objects.get(item=item).outcome == "succeeded"
    assert events_for(item)[-1] == "platform.integration.recovery.delivered"


@pytest.mark.django_db
@pytest.mark.parametrize("status", [408, 500, 502, 503])
def test_it_schedules_a_retry_for_retryable_statuses(integration, httpserver, status):
    httpserver.expect_oneshot_request(PATH).respond_with_data("upstream sad", status=status)
    item = QueuedItemFactory(integration=integration)
    before = timezone.now()
    deliver()
    item.refresh_from_db()
    assert item.status == "retrying"
    assert item.attempt_count == 1
    assert item.failure_code == f"HTTP_{status}"
    assert "upstream sad" in item.failure_detail
    # Full jitter: somewhere in [now, now + base * 2**0].
    assert before <= item.next_retry_at <= timezone.now() + timedelta(seconds=30)
    event = AuditEvent.objects.filter(event="platform.integration.recovery.retry_scheduled").get()
    assert event.before_state["status"] == "pending"
    assert event.after_state["status"] == "retrying"
    assert event.after_state["attempt_count"] == 1


@pytest.mark.django_db
def test_it_honours_retry_after_on_429(integration, httpserver):
    httpserver.expect_oneshot_request(PATH).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    item = QueuedItemFactory(integration=integration)
    deliver()
    item.refresh_from_db()
    assert item.status == "retrying"
    assert item.failure_code == "HTTP_429"
    wait = (item.next_retry_at - item.last_attempt_at).total_seconds()
    assert 119 <= wait <= 121
    assert DeliveryAttempt.objects.get(item=item).retry_after_seconds == 120


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_it_fails_at_once_on_a_non_retryable_status(integration, httpserver, status):
    httpserver.expect_oneshot_request(PATH).respond_with_json({"error": "bad"}, status=status)
    item = QueuedItemFactory(integration=integration)
    deliver()
    item.refresh_from_db()
    assert item.status == "failed"
    assert item.attempt_count == 1
    assert item.next_retry_at is None
    assert item.failure_code == f"HTTP_{status}"
    assert events_for(item)[-1] == "platform.integration.recovery.reprocess_failed"


@pytest.mark.django_db
def test_a_retry_that_succeeds_is_reprocess_succeeded(integration, httpserver):
    httpserver.expect_ordered_request(PATH).respond_with_data("down", status=503)
    httpserver.expect_ordered_request(PATH).respond_with_data("ok", status=204)
    item = QueuedItemFactory(integration=integration)
    deliver()
    make_due(item)
    deliver()
    item.refresh_from_db()
    assert item.status == "succeeded"
    assert item.attempt_count == 2
    assert item.failure_code == ""
    assert events_for(item)[-2:] == [
        "platform.integration.recovery.retry_scheduled",
        "platform.integration.recovery.reprocess_succeeded",
    ]
    assert [r.headers["X-Ops-Attempt"] for r, _ in httpserver.log] == ["1", "2"]


@pytest.mark.django_db
def test_it_parks_an_exhausted_item_in_the_dlq_with_its_snapshots(integration, httpserver):
    httpserver.expect_request(PATH).respond_with_data("still down", status=500)
    item = QueuedItemFactory(integration=integration, payload={"booking": 9})
    for _ in range(item.max_attempts):
        make_due(item)
        deliver()
    item.refresh_from_db()
    assert item.max_attempts == 5
    assert item.status == "dlq"
    assert item.attempt_count == 5
    assert item.next_retry_at is None
    assert item.request_snapshot["body"] == {"booking": 9}
    assert item.response_snapshot["body"] == "still down"
    assert DeliveryAttempt.objects.filter(item=item).count() == 5
    exhausted = AuditEvent.objects.get(event="platform.integration.recovery.retry_exhausted")
    assert exhausted.before_state["status"] == "retrying"
    assert exhausted.after_state == {**exhausted.after_state, "status": "dlq", "attempt_count": 5}
    # Nothing more happens to a parked item.
    make_due(item)
    assert deliver().claimed == 0


@pytest.mark.django_db
def test_it_does_not_claim_items_that_are_not_due_yet(integration, httpserver):
    httpserver.expect_request(PATH).respond_with_data("down", status=500)
    item = QueuedItemFactory(integration=integration)
    deliver()
    assert deliver().claimed == 0
    item.refresh_from_db()
    with time_machine.travel(item.next_retry_at + timedelta(seconds=1)):
        assert deliver().claimed == 1


@pytest.mark.django_db
def test_a_timeout_is_a_retryable_network_error(hanging_handler, integration, httpserver):

    httpserver.expect_request(PATH).respond_with_handler(hanging_handler(1.5))
    item = QueuedItemFactory(integration=integration)
    deliver(timeout=0.3)
    item.refresh_from_db()
    assert item.status == "retrying"
    assert item.failure_code == "NETWORK_READ_TIMEOUT"
    assert item.response_snapshot["error"] == "read_timeout"


@pytest.mark.django_db
def test_a_refused_connection_is_a_retryable_network_error(integration):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    integration.endpoint_url = f"http://127.0.0.1:{closed_port}/hook"
    integration.save()
    item = QueuedItemFactory(integration=integration)
    deliver()
    item.refresh_from_db()
    assert item.status == "retrying"
    assert item.failure_code == "NETWORK_CONNECTION_REFUSED"


@pytest.mark.django_db
def test_a_garbage_response_is_a_retryable_protocol_error(integration):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer_garbage() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"\x00\x01this is not http at all\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    integration.endpoint_url = f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    integration.save()
    item = QueuedItemFactory(integration=integration)
    deliver()
    thread.join(5)
    server.close()
    item.refresh_from_db()
    assert item.status == "retrying"
    assert item.failure_code == "NETWORK_REMOTE_PROTOCOL_ERROR"


@pytest.mark.django_db
def test_a_paused_integration_gets_no_deliveries_until_resumed(integration, httpserver, operator):
    httpserver.expect_request(PATH).respond_with_data("ok")
    item = QueuedItemFactory(integration=integration)
    services.integration_set_paused(
        integration_id=integration.pk, paused=True, actor=operator, reason="vendor outage"
    )
    assert deliver().claimed == 0
    assert httpserver.log == []
    services.integration_set_paused(
        integration_id=integration.pk, paused=False, actor=operator, reason="vendor back"
    )
    deliver()
    item.refresh_from_db()
    assert item.status == "succeeded"
    paused = AuditEvent.objects.get(event="platform.integration.paused")
    assert (paused.before_state, paused.after_state) == (
        {"enabled": True, "paused": False},
        {"enabled": True, "paused": True},
    )


@pytest.mark.django_db
def test_the_kill_switch_stops_the_worker(integration, httpserver, operator, settings):
    httpserver.expect_request(PATH).respond_with_data("ok")
    QueuedItemFactory(integration=integration)
    worker_switch_set(
        name="integration_delivery_worker", enabled=False, actor=operator, reason="incident"
    )
    summary = deliver()
    assert summary.skipped is True
    assert httpserver.log == []
    assert AuditEvent.objects.filter(event="platform.worker.disabled").count() == 1
    settings.WORKER_DEFAULTS_ENABLED = {"integration_delivery_worker": False}
    worker_switch_set(name="integration_delivery_worker", enabled=True, actor=operator, reason="ok")
    assert deliver().outcomes == {"succeeded": 1}


@pytest.mark.django_db
def test_the_settings_default_switches_a_worker_off_when_no_row_says_otherwise(
    integration, settings
):
    settings.WORKER_DEFAULTS_ENABLED = {"integration_delivery_worker": False}
    QueuedItemFactory(integration=integration)
    assert deliver().skipped is True


@pytest.mark.django_db
def test_it_records_heartbeats_and_counts_crashed_runs(integration, monkeypatch):
    QueuedItemFactory(integration=integration)

    def claim_crash(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(services, "recovery_items_claim_due", claim_crash)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            deliver()
    status = WorkerStatus.objects.get(name="integration_delivery_worker")
    assert status.consecutive_failures == 2
    assert "database hiccup" in status.last_error
    monkeypatch.undo()
    deliver()
    status.refresh_from_db()
    assert status.consecutive_failures == 0
    assert status.last_heartbeat_at is not None
    assert status.last_triggered_by == "test"


@pytest.mark.django_db
def test_a_worker_that_lost_its_lease_does_not_start_the_call(integration, httpserver):
    httpserver.expect_request(PATH).respond_with_data("ok")
    item = QueuedItemFactory(integration=integration)
    worker = IntegrationDeliveryWorker()
    assert claimed_ids(worker, "worker-a", limit=10) == [item.pk]
    # worker-a's lease expired and worker-b claimed the item.
    RecoveryItem.objects.filter(pk=item.pk).update(lease_expires_at=timezone.now())
    assert claimed_ids(worker, "worker-b", limit=10) == [item.pk]
    current = RecoveryItem.objects.select_related("integration").get(pk=item.pk)
    with pytest.raises(LeaseLost):
        services.delivery_start(current, lease_owner="worker-a")
    item.refresh_from_db()
    assert item.status == "pending"
    assert item.attempt_count == 0
    assert httpserver.log == []


@pytest.mark.django_db
def test_metrics_report_queue_depth_per_integration_and_status(
    integration, httpserver, client, monitoring_client
):
    httpserver.expect_request(PATH).respond_with_data("down", status=500)
    QueuedItemFactory(integration=integration)
    QueuedItemFactory(integration=integration)
    deliver()
    text = monitoring_client.get("/metrics").content.decode()
    # By the integration's id (a rename does not split the series); its name in the info.
    crm = Integration.objects.get(name="crm")
    assert (
        f'opsconsole_integration_recovery_items{{integration_id="{crm.pk}",status="retrying"}} 2.0'
        in text
    )
    assert (
        f'opsconsole_integration_info{{enabled="true",integration="crm",integration_id="{crm.pk}",'
        'paused="false"} 1.0' in text
    )
    assert (
        'smplat_catalog_scheduler_items_processed_total{worker="integration_delivery_worker"} 2.0'
        in text
    )
