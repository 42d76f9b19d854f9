"""The `server_action_failed` log lines (docs/runbooks/incident-response.md)."""

from __future__ import annotations

import io
import json
import logging
from contextlib import contextmanager

import pytest

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


class _FailingWorker:
    """A worker whose claim fails, as when its database goes away mid-run."""

    @staticmethod
    def build():
        from enum import StrEnum

        from opsconsole.workers import BatchWorker

        class FailingWorker(BatchWorker):
            name = "failing_test_worker"

            class Outcome(StrEnum):
                DONE = "done"

            def claim(self, run, *, limit):
                raise RuntimeError("the claim failed")

            def process(self, item_id, run):
                return self.Outcome.DONE

        return FailingWorker()


@pytest.mark.django_db
def test_a_crashed_worker_run_logs_server_action_failed_and_an_error_span(httpserver):
    """Alerts on scheduler failures read these lines and spans with
    otel.status_code=ERROR: a crashed run writes both, with its worker's name and trace."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    from opsconsole.monitoring.tracing import configure_tracing, shutdown_tracing

    httpserver.expect_request("/v1/traces", method="POST").respond_with_data("", status=200)
    provider = configure_tracing(endpoint=httpserver.url_for("/"), service_name="smplat-api")
    try:
        with captured_json_logs() as lines, pytest.raises(RuntimeError):
            _FailingWorker.build().run_once(triggered_by="schedule")
        provider.force_flush()
    finally:
        shutdown_tracing()
    (line,) = [entry for entry in lines if entry["event"] == "server_action_failed"]
    assert (line["worker"], line["triggered_by"], line["level"]) == (
        "failing_test_worker",
        "schedule",
        "error",
    )
    assert "the claim failed" in line["error"] and line["trace_id"]
    spans = [
        span
        for request, _ in httpserver.log
        for resource_spans in ExportTraceServiceRequest.FromString(
            request.get_data()
        ).resource_spans
        for scope in resource_spans.scope_spans
        for span in scope.spans
    ]
    (run_span,) = [span for span in spans if span.name == "worker failing_test_worker"]
    assert run_span.status.code == Status.STATUS_CODE_ERROR
    assert run_span.trace_id.hex() == line["trace_id"]
