"""Workers in readyz and /metrics: heartbeats, staleness, failures in a row
(docs/runbooks/incident-response.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from opsconsole.models import WorkerStatus
from recovery.workers import IntegrationDeliveryWorker


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
def test_heartbeat_age_grows_without_runs(monitoring_client):
    IntegrationDeliveryWorker().run_once(triggered_by="test")
    with time_machine.travel(timezone.now() + timedelta(seconds=90)):
        body = monitoring_client.get("/api/v1/health/readyz").json()
    age = body["components"]["integration_delivery_worker"]["details"]["heartbeat_age_seconds"]
    assert 85 <= age <= 120


@pytest.mark.django_db
def test_a_worker_that_runs_daily_is_stale_only_past_its_interval(monitoring_client):
    """The retention redactor runs once a day: an hour after its run it is ready, a day and
    ten minutes after it is degraded; a minute worker is degraded after five minutes."""
    WorkerStatus.objects.create(
        name="retention_redactor", last_heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    WorkerStatus.objects.create(
        name="weekly_digest_scheduler", last_heartbeat_at=timezone.now() - timedelta(minutes=30)
    )
    components = monitoring_client.get("/api/v1/health/readyz").json()["components"]
    assert components["retention_redactor"]["status"] == "ready"
    assert components["weekly_digest_scheduler"]["status"] == "ready"
    WorkerStatus.objects.filter(name="retention_redactor").update(
        last_heartbeat_at=timezone.now() - timedelta(days=1, minutes=10)
    )
    components = monitoring_client.get("/api/v1/health/readyz").json()["components"]
    assert components["retention_redactor"]["status"] == "degraded"
