from __future__ import annotations

import pytest

from opsconsole.monitoring.tracing import tracing_enabled
from recovery.workers import IntegrationDeliveryWorker
from tests.payments.factories import HostedSessionFactory

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_no_endpoint_means_no_tracing():
    assert tracing_enabled() is False


@pytest.mark.django_db
def test_a_request_is_a_server_span_continuing_the_callers_trace(collector, anonymous_client):
    response = anonymous_client.get("/api/v1/health/livez", HTTP_TRACEPARENT=INCOMING)
    _, trace_id, span_id, _ = response["traceparent"].split("-")
    assert trace_id == INCOMING.split("-")[1]
    [(resource, span)] = [s for s in collector() if s[1].name == "GET api/v1/health/livez"]
    assert resource["service.name"] == "smplat-api"
    assert span.trace_id.hex() == trace_id
    assert span.span_id.hex() == span_id  # the id we echo and log is the exported span's
    assert span.parent_span_id.hex() == INCOMING.split("-")[2]


@pytest.mark.django_db(transaction=True)
def test_a_server_error_span_is_marked_error_and_worker_runs_are_spans(
    collector, client, operator_client, httpserver, settings
):
    from django.db import connection
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    connection.close()  # the next connection is opened traced, as in a process started with it
    client.post("/api/v1/bookings/holds", data="{", content_type="application/json")
    # A real 5xx: the checkout provider is down, so regenerate answers 503.
    httpserver.expect_request("/checkout").respond_with_data("down", status=502)
    settings.PAYMENTS_CHECKOUT_URL = httpserver.url_for("/checkout")
    session = HostedSessionFactory()
    regenerate = f"/api/v1/billing/sessions/{session.pk}/regenerate"
    assert operator_client.post(regenerate, {}, format="json").status_code == 503
    IntegrationDeliveryWorker().run_once(triggered_by="test")
    exported = [span for _, span in collector()]
    spans = {span.name: span for span in exported}
    assert "worker integration_delivery_worker" in spans
    hold = spans["POST api/v1/bookings/holds"]
    attributes = {a.key: a.value.int_value for a in hold.attributes}
    assert attributes["http.response.status_code"] in (400, 401)
    assert hold.status.code != Status.STATUS_CODE_ERROR  # a 4xx is the caller's error
    # Spans are named by the route's template, not the path with its ids.
    server = spans["POST api/v1/billing/sessions/<str:session_id>/regenerate"]
    assert server.status.code == Status.STATUS_CODE_ERROR
    # Inside it: a span per query (psycopg's) and one for the call to the provider (httpx's).
    inside = [span for span in exported if span.trace_id == server.trace_id and span != server]
    queries = [span for span in inside if any(a.key == "db.system" for a in span.attributes)]
    calls = [span for span in inside if span.kind == span.SPAN_KIND_CLIENT and span not in queries]
    assert queries and all(span.kind == span.SPAN_KIND_CLIENT for span in queries)
    assert [span.name for span in calls] == ["POST"]
    call = {a.key: a.value.int_value for a in calls[0].attributes}
    # The instrumentation's semantic conventions name it either way (OTEL_SEMCONV_STABILITY).
    assert call.get("http.response.status_code", call.get("http.status_code")) == 502
