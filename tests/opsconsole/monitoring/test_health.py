from __future__ import annotations

import pytest
from django.db import connections

from opsconsole.models import WorkerStatus
from opsconsole.workers.switches import worker_switch_set

WORKER = "integration_delivery_worker"


@pytest.mark.smoke
@pytest.mark.django_db
def test_livez_answers_without_touching_anything(anonymous_client):
    response = anonymous_client.get("/api/v1/health/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.smoke
@pytest.mark.django_db
def test_readyz_reports_each_component_and_the_worst_overall(monitoring_client):
    response = monitoring_client.get("/api/v1/health/readyz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ready"
    assert body["components"]["database"]["status"] == "ready"
    assert body["components"]["database"]["details"]["vendor"] == connections["default"].vendor
    assert WORKER in body["components"]
    assert "hosted_recovery_worker" in body["components"]


@pytest.mark.django_db
def test_readyz_is_degraded_when_a_worker_is_switched_off(monitoring_client, operator):
    worker_switch_set(name=WORKER, enabled=False, actor=operator, reason="incident 42")
    body = monitoring_client.get("/api/v1/health/readyz").json()
    assert body["status"] == "degraded"
    component = body["components"][WORKER]
    assert component["status"] == "degraded"
    assert component["details"]["enabled"] is False
    assert component["details"]["disabled_reason"] == "incident 42"


@pytest.mark.django_db
def test_readyz_is_error_after_three_failed_runs_in_a_row(monitoring_client):
    WorkerStatus.objects.create(name=WORKER, consecutive_failures=3, last_error="boom")
    response = monitoring_client.get("/api/v1/health/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["components"][WORKER]["details"]["consecutive_failures"] == 3


@pytest.mark.django_db(transaction=True)
def test_readyz_reports_the_database_as_error_when_it_is_down(monitoring_client, database_down):
    response = monitoring_client.get("/api/v1/health/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["components"]["database"]["status"] == "error"
    assert body["components"]["database"]["details"]["error"] == "OperationalError"


@pytest.mark.django_db
def test_metrics_expose_worker_state_in_prometheus_text(client, monitoring_client):
    WorkerStatus.objects.create(name=WORKER, consecutive_failures=2)
    response = monitoring_client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert f'smplat_catalog_scheduler_consecutive_failures{{worker="{WORKER}"}} 2.0' in text
    assert f'smplat_catalog_scheduler_enabled{{worker="{WORKER}"}} 1.0' in text
    assert 'opsconsole_metrics_source_up{source="workers"} 1.0' in text


@pytest.mark.django_db
def test_the_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/health/readyz" in schema.json()["paths"]
    assert client.get("/api/docs/").status_code == 200
