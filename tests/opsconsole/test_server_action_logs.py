"""Seed 002's `server_action_failed` log lines."""

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
