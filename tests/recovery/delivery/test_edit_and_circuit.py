from __future__ import annotations

import pytest
import time_machine
from django.utils import timezone

from opsconsole.models import AuditEvent
from recovery.models import PayloadEdit, ProviderCircuit, RecoveryItem
from recovery.workers import IntegrationDeliveryWorker
from tests.helpers import action_post, error_of
from tests.recovery.factories import ParkedItemFactory, QueuedItemFactory
from tests.workers import run_worker

PATH = "/hooks/crm"


def url(item, suffix="edit-and-replay"):
    return f"/platform/integrations/{item.integration_id}/recovery/queue/{item.pk}/{suffix}"


@pytest.mark.django_db
def test_an_edited_payload_is_validated_stored_as_a_diff_and_delivered(
    integration, operator_client, httpserver
):
    item = ParkedItemFactory(
        integration=integration, status="dlq", payload={"booking": 7, "email": "bad@"}
    )
    response = operator_client.post(
        url(item),
        {"payload": {"booking": 7, "email": "ana@example.test"}, "reason": "typo"},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert '-  "email": "bad@"' in response.json()["diff"]
    item.refresh_from_db()
    assert item.payload == {"booking": 7, "email": "bad@"}  # the original is never overwritten
    assert item.payload_override == {"booking": 7, "email": "ana@example.test"}
    edit = PayloadEdit.objects.get(item=item)
    assert (edit.edited_by, edit.reason) == ("operator", "typo")
    assert AuditEvent.objects.filter(event="platform.integration.recovery.payload_edited").exists()
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    assert run_worker(IntegrationDeliveryWorker).outcomes == {"succeeded": 1}
    delivered = [r.json for r, _ in httpserver.log if r.path == PATH]
    assert delivered == [{"booking": 7, "email": "ana@example.test"}]


@pytest.mark.django_db
def test_an_edit_that_breaks_the_schema_is_refused_and_changes_nothing(
    integration, operator_client
):
    item = ParkedItemFactory(integration=integration, status="dlq", payload={"booking": 7})
    response = operator_client.post(
        url(item), {"payload": {"booking": "seven"}, "reason": "x"}, format="json"
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "INT-400-INVALID-PAYLOAD"
    assert "booking" in error["details"]["fields"]["payload"][0]
    assert not PayloadEdit.objects.exists()
    assert RecoveryItem.objects.get(pk=item.pk).status == "dlq"


@pytest.mark.django_db
def test_the_admin_edit_page_previews_the_diff_then_replays(integration, admin_client):
    item = ParkedItemFactory(integration=integration, status="dlq", payload={"booking": 7})
    page = f"/admin/recovery/recoveryitem/{item.pk}/edit-and-replay/"
    preview = admin_client.post(page, {"payload": '{"booking": 8}', "confirm": "no"})
    assert 'data-testid="payload-diff"' in preview.content.decode()
    token = preview.context["action_token"]
    form = {"payload": '{"booking": 8}', "confirm": "yes", "reason": "fix", "action_token": token}
    admin_client.post(page, form)
    admin_client.post(page, form)  # the double click
    assert PayloadEdit.objects.filter(item=item).count() == 1
    assert RecoveryItem.objects.get(pk=item.pk).status == "replayed"


@pytest.mark.django_db
def test_the_circuit_opens_after_repeated_failures_probes_then_drains(
    integration, httpserver, settings, monitoring_client
):
    settings.CIRCUIT_FAILURE_THRESHOLD = 3
    settings.CIRCUIT_DRAIN_PER_RUN = 2
    httpserver.expect_request(PATH).respond_with_data("down", status=503)
    items = [QueuedItemFactory(integration=integration) for _ in range(8)]
    RecoveryItem.objects.update(next_retry_at=timezone.now())
    run_worker(IntegrationDeliveryWorker)  # 8 failures; the circuit opens at the third
    circuit = ProviderCircuit.objects.get(integration=integration)
    assert circuit.state == "open"
    assert AuditEvent.objects.filter(event="platform.integration.circuit_open").count() == 1
    readyz = monitoring_client.get("/api/v1/health/readyz").json()
    assert readyz["components"]["circuit_breakers"]["status"] == "degraded"

    RecoveryItem.objects.update(next_retry_at=timezone.now())
    assert (
        run_worker(IntegrationDeliveryWorker).claimed == 0
    )  # open: no deliveries until the probe time
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    with time_machine.travel(circuit.next_probe_at):
        RecoveryItem.objects.update(next_retry_at=timezone.now())
        assert run_worker(IntegrationDeliveryWorker).claimed == 1  # exactly one probe
        assert ProviderCircuit.objects.get(pk=circuit.pk).state == "draining"
        assert run_worker(IntegrationDeliveryWorker).claimed == 2  # capped drain, not a flood
        for _ in range(3):
            run_worker(IntegrationDeliveryWorker)
    assert ProviderCircuit.objects.get(pk=circuit.pk).state == "closed"
    assert RecoveryItem.objects.filter(status="succeeded").count() == len(items)
    transitions = list(
        AuditEvent.objects.filter(event__startswith="platform.integration.circuit_")
        .order_by("id")
        .values_list("event", flat=True)
    )
    assert transitions == [
        "platform.integration.circuit_open",
        "platform.integration.circuit_draining",
        "platform.integration.circuit_closed",
    ]


@pytest.mark.django_db
def test_each_attempt_keeps_its_request_and_response(integration, httpserver, admin_client):
    httpserver.expect_request(PATH).respond_with_data(
        '{"error": "nope"}', status=500, headers={"X-Request-ID": "up-1"}
    )
    item = QueuedItemFactory(integration=integration, payload={"booking": 3})
    run_worker(IntegrationDeliveryWorker)
    attempt = item.attempts.get()
    assert attempt.request_snapshot["body"] == {"booking": 3}
    assert attempt.request_snapshot["headers"]["Idempotency-Key"] == f"recovery-item-{item.pk}"
    assert attempt.response_snapshot["status"] == 500
    assert attempt.response_snapshot["body"] == '{"error": "nope"}'
    assert attempt.response_snapshot["headers"]["x-request-id"] == "up-1"
    page = admin_client.get(f"/admin/recovery/recoveryitem/{item.pk}/change/").content.decode()
    assert "up-1" in page and "Idempotency-Key" in page


@pytest.mark.django_db
def test_admin_actions_act_once_on_a_double_click(integration, admin_client):
    item = ParkedItemFactory(integration=integration, status="dlq")
    listing = "/admin/recovery/recoveryitem/"
    confirm = action_post(admin_client, listing, "replay_items", [item.pk])
    token = confirm.context["action_token"]
    for _ in range(2):
        action_post(
            admin_client,
            listing,
            "replay_items",
            [item.pk],
            confirm="yes",
            reason="double",
            action_token=token,
        )
    assert AuditEvent.objects.filter(event="platform.integration.recovery.replayed").count() == 1
