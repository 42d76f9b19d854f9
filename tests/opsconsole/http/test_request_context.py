from __future__ import annotations

import io
import json
import logging

import pytest
from django.db import transaction

from opsconsole.evidence import audit
from opsconsole.http.context import bound_context, clean_traceparent
from opsconsole.models import AuditEvent

pytestmark = pytest.mark.urls("tests.opsconsole.urls_for_tests")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.mark.smoke
@pytest.mark.django_db
def test_it_echoes_a_callers_request_id(anonymous_client):
    response = anonymous_client.get("/api/v1/health/livez", HTTP_X_REQUEST_ID="req-abc.123")
    assert response["X-Request-ID"] == "req-abc.123"


@pytest.mark.smoke
@pytest.mark.django_db
def test_it_generates_a_request_id_when_none_or_an_unsafe_one_is_sent(anonymous_client):
    generated = anonymous_client.get("/api/v1/health/livez")["X-Request-ID"]
    assert len(generated) == 32
    unsafe = anonymous_client.get("/api/v1/health/livez", HTTP_X_REQUEST_ID="bad id\n<script>")
    assert unsafe["X-Request-ID"] != "bad id\n<script>"
    assert len(unsafe["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_it_continues_the_callers_trace_with_a_new_span(anonymous_client):
    response = anonymous_client.get("/api/v1/health/livez", HTTP_TRACEPARENT=INCOMING_TRACEPARENT)
    version, trace_id, span_id, flags = response["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert span_id != "00f067aa0ba902b7"


def test_it_starts_a_new_trace_for_an_invalid_traceparent():
    for bad in [
        "garbage",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",
    ]:
        assert TRACE_ID not in clean_traceparent(bad)
        assert len(clean_traceparent(bad).split("-")) == 4


@pytest.mark.django_db
def test_it_binds_request_id_and_traceparent_into_json_log_lines(anonymous_client):
    stream = io.StringIO()
    console = logging.getLogger().handlers[0]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    logging.getLogger().addHandler(handler)
    try:
        response = anonymous_client.get(
            "/api/v1/missing", HTTP_X_REQUEST_ID="log-me-1", HTTP_TRACEPARENT=INCOMING_TRACEPARENT
        )
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert response.status_code == 404
    assert any(
        line["request_id"] == "log-me-1" and TRACE_ID in line["traceparent"] for line in lines
    ), lines


@pytest.mark.django_db
def test_it_stores_request_id_and_traceparent_on_audit_events(outsider_client):
    response = outsider_client.post(
        "/api/v1/test/charges",
        {"amount": 3},
        format="json",
        HTTP_X_REQUEST_ID="audit-req-7",
        HTTP_TRACEPARENT=INCOMING_TRACEPARENT,
    )
    assert response.status_code == 201
    event = AuditEvent.objects.get(pk=response.json()["execution_id"])
    assert event.request_id == "audit-req-7"
    assert event.traceparent == response["traceparent"]
    assert event.actor == "outsider"


@pytest.mark.django_db
def test_workers_bind_their_own_context_for_audit_rows():
    with bound_context(request_id="worker-run-1"), transaction.atomic():
        event = audit.record("test.worker.event", object_type="x", object_id=1, actor="worker:x")
    assert event.request_id == "worker-run-1"
    assert event.traceparent.startswith("00-")
