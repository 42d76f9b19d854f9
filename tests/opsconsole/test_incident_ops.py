from __future__ import annotations

import csv
import io
import json
import logging
from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from opsconsole.backup_drill import compare_rowcounts
from opsconsole.banner import banner_set
from opsconsole.models import AuditEvent, ConsoleBanner, WorkerStatus
from recovery.workers import IntegrationDeliveryWorker
from tests.conftest import action_post, error_of, make_user

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@contextmanager
def captured_json_logs():
    stream = io.StringIO()
    console = logging.getLogger().handlers[0]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    logging.getLogger().addHandler(handler)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        logging.getLogger().removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


@pytest.mark.django_db
def test_readyz_reports_the_broker_and_each_workers_heartbeat(monitoring_client):
    IntegrationDeliveryWorker().run_once(triggered_by="test")
    body = monitoring_client.get("/api/v1/health/readyz").json()
    assert body["components"]["broker"]["status"] == "ready"
    assert body["components"]["broker"]["details"]["type"] == "orm"
    worker = body["components"]["integration_delivery_worker"]
    assert worker["status"] == "ready"
    assert 0 <= worker["details"]["heartbeat_age_seconds"] < 60
    assert worker["details"]["enabled"] is True
    expected = {
        "hosted_recovery_worker",
        "refund_retry_worker",
        "notification_delivery_worker",
        "campaign_dispatcher_worker",
        "booking_hold_expiry_worker",
        "dlq_sweeper",
    }
    assert expected <= set(body["components"])


@pytest.mark.django_db
def test_a_worker_whose_heartbeat_went_stale_is_degraded(monitoring_client, settings):
    WorkerStatus.objects.create(
        name="refund_retry_worker", last_heartbeat_at=timezone.now() - timedelta(minutes=10)
    )
    body = monitoring_client.get("/api/v1/health/readyz").json()
    component = body["components"]["refund_retry_worker"]
    assert component["status"] == "degraded"
    assert component["details"]["heartbeat_age_seconds"] >= 600


@pytest.mark.django_db
def test_metrics_count_outcomes_per_worker_and_queue_depth(client, httpserver, monitoring_client):
    from recovery import services

    integration = services.integration_create(
        name="crm", endpoint_url=httpserver.url_for("/hook"), actor="t"
    )
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    services.recovery_item_enqueue(integration=integration, event_type="x", payload={})
    IntegrationDeliveryWorker().run_once(triggered_by="test")
    text = monitoring_client.get("/metrics").content.decode()
    assert (
        'smplat_catalog_scheduler_outcomes_total{outcome="retry_scheduled",'
        'worker="integration_delivery_worker"} 1.0' in text
    )
    assert 'smplat_catalog_scheduler_runs_total{worker="integration_delivery_worker"} 1.0' in text
    assert 'opsconsole_queue_items{queue="integration_deliveries",status="retrying"} 1.0' in text
    assert "smplat_catalog_scheduler_heartbeat_age_seconds" in text


@pytest.mark.django_db
def test_a_failed_server_action_logs_server_action_failed_with_ids(operator_client):
    with captured_json_logs() as lines:
        response = operator_client.post(
            "/platform/integrations/1/recovery/queue/1/replay",
            {"reason": "x"},
            format="json",
            HTTP_X_REQUEST_ID="incident-7",
            HTTP_TRACEPARENT=TRACEPARENT,
        )
    assert response.status_code == 404
    failed = [line for line in lines if line["event"] == "server_action_failed"]
    assert len(failed) == 1, lines
    line = failed[0]
    assert line["service"] == "smplat-api"
    assert line["request_id"] == "incident-7"
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert (line["status_code"], line["error_code"]) == (404, "INT-404-NOT-FOUND")
    assert all(entry.get("service") == "smplat-api" for entry in lines)


@pytest.mark.django_db
def test_reads_that_fail_are_not_server_actions(anonymous_client):
    with captured_json_logs() as lines:
        anonymous_client.get("/api/v1/nothing-here")
    assert not [line for line in lines if line["event"] == "server_action_failed"]


@pytest.mark.django_db
def test_failed_logins_are_counted_and_the_account_locked_at_the_threshold(
    client, viewer_client, settings
):
    make_user("target-user").is_staff = True
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "target-user", "password": "wrong"})
    locked = client.post("/admin/login/", {"username": "target-user", "password": "pw-123456"})
    assert locked.status_code == 429  # even the right password is refused while locked
    attempts = viewer_client.get("/api/v1/auth/attempts").json()
    assert attempts["failed_last_minute"] >= settings.AXES_FAILURE_LIMIT
    assert attempts["top_usernames_last_hour"][0]["username"] == "target-user"
    lockout = viewer_client.get("/api/v1/auth/lockout").json()
    assert lockout["threshold"] == settings.AXES_FAILURE_LIMIT
    assert [a["username"] for a in lockout["locked_accounts"]] == ["target-user"]
    assert lockout["lockouts_last_minute"] >= 1


@pytest.mark.django_db
def test_auth_monitoring_needs_the_view_permission(outsider_client, anonymous_client):
    assert outsider_client.get("/api/v1/auth/lockout").status_code == 403
    response = anonymous_client.get("/api/v1/auth/attempts")
    assert (response.status_code, error_of(response)["code"]) == (401, "OPS-401-UNAUTHENTICATED")


@pytest.mark.django_db
def test_operators_set_the_banner_with_a_reason_and_everyone_sees_it(client, admin_client):
    operator = make_user("op-staff", "Support operator")
    operator.is_staff = True
    operator.save()
    client.force_login(operator)
    response = client.post(
        "/admin/platform/consolebanner/add/",
        {"message": "Stripe degraded: refunds delayed", "level": "critical", "reason": "INC-42"},
    )
    assert response.status_code == 302, response.content[:500]
    banner = ConsoleBanner.objects.get(active=True)
    assert banner.set_by == "op-staff"
    page = admin_client.get("/admin/").content.decode()
    assert 'data-testid="console-banner"' in page
    assert "Stripe degraded: refunds delayed" in page
    assert AuditEvent.objects.get(event="platform.banner.set").reason == "INC-42"
    banner_set(message="Recovered", level="info", actor="op", reason="resolved")
    assert ConsoleBanner.objects.filter(active=True).count() == 1
    action_post(
        admin_client,
        "/admin/platform/consolebanner/",
        "clear_banner",
        [ConsoleBanner.objects.get(active=True).pk],
        confirm="yes",
        reason="all clear",
    )
    assert not ConsoleBanner.objects.filter(active=True).exists()
    assert 'data-testid="console-banner"' not in admin_client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_the_console_overview_shows_queues_oldest_stuck_workers_and_actions(admin_client):
    from recovery import services
    from tests.recovery.conftest import park

    integration = services.integration_create(name="erp", endpoint_url="https://x.test", actor="t")
    old = park(integration, "dlq")
    park(integration, "dlq")
    services.integration_set_paused(
        integration_id=integration.pk,
        paused=True,
        actor=make_user("someone", superuser=True),
        reason="INC-9",
    )
    page = admin_client.get("/admin/overview/")
    assert page.status_code == 200
    html = page.content.decode()
    queue = next(q for q in page.context["queues"] if q["name"] == "integration_deliveries")
    assert dict(queue["counts"])["dlq"] == 2
    assert queue["oldest_stuck"].pk == old.pk
    assert f"/admin/recovery/recoveryitem/{old.pk}/change/" in html
    assert "integration_delivery_worker" in html
    assert "platform.integration.paused" in html and "INC-9" in html


@pytest.mark.django_db
def test_the_overview_is_refused_to_staff_without_the_view_permission(client):
    staff = make_user("plain-staff")
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    assert client.get("/admin/overview/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_backup_drill_restores_with_row_count_parity(tmp_path):
    from recovery import services

    services.integration_create(name="drill", endpoint_url="https://x.test", actor="t")
    call_command("backup_drill", "--output-dir", str(tmp_path))
    [run] = list(tmp_path.iterdir())
    rows = list(csv.DictReader(io.StringIO((run / "rowcount.csv").read_text())))
    by_table = {row["table"]: row for row in rows}
    assert by_table["recovery_integration"]["source_rows"] == "1"
    assert by_table["recovery_integration"]["restored_rows"] == "1"
    assert all(row["match"] == "yes" for row in rows)
    log = (run / "backup.log").read_text()
    assert "parity OK" in log and "dropped" in log


@pytest.mark.django_db(transaction=True)
def test_a_failed_restore_is_a_non_zero_exit_with_the_reason_logged(tmp_path):
    from opsconsole.backup_drill import pg_binary

    only_dump = tmp_path / "bin"
    only_dump.mkdir()
    (only_dump / "pg_dump").symlink_to(pg_binary("pg_dump"))
    out = tmp_path / "out"
    with pytest.raises(CommandError, match="pg_restore not found"):
        call_command("backup_drill", "--output-dir", str(out), "--pg-bin-dir", str(only_dump))
    [run] = list(out.iterdir())
    assert "FAILED: pg_restore not found" in (run / "backup.log").read_text()


def test_parity_compares_every_table_both_ways():
    assert compare_rowcounts({"a": 1, "b": 2}, {"a": 1, "b": 2}) == []
    assert compare_rowcounts({"a": 1, "b": 2}, {"a": 1, "b": 3}) == ["b"]
    assert compare_rowcounts({"a": 1}, {"a": 1, "c": 0}) == ["c"]


@pytest.mark.django_db
def test_heartbeat_age_grows_without_runs(monitoring_client):
    IntegrationDeliveryWorker().run_once(triggered_by="test")
    with time_machine.travel(timezone.now() + timedelta(seconds=90)):
        body = monitoring_client.get("/api/v1/health/readyz").json()
    age = body["components"]["integration_delivery_worker"]["details"]["heartbeat_age_seconds"]
    assert 85 <= age <= 120
