"""One JSON access line per request with its request id and route; LOG_FORMAT=console for
people; gunicorn's own lines through the same formatter."""

from __future__ import annotations

import io
import logging

import pytest
import structlog

from opsconsole.http.logs import logging_config
from tests.opsconsole.monitoring.test_server_action_logs import captured_json_logs


@pytest.mark.django_db
def test_each_request_writes_one_access_line_with_its_ids_and_route(viewer_client):
    with captured_json_logs() as lines:
        response = viewer_client.get("/api/v1/cases/cus_nobody", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 404
    (line,) = [entry for entry in lines if entry["event"] == "http_request"]
    assert line["request_id"] == "req-42"
    assert (line["method"], line["path"], line["status_code"]) == (
        "GET",
        "/api/v1/cases/cus_nobody",
        404,
    )
    assert line["route"] == "api/v1/cases/<str:ref>"
    assert line["logger"] == "opsconsole.access" and line["duration_ms"] >= 0


def render(log_format: str, logger_name: str) -> str:
    config = logging_config("INFO", log_format)
    formatter = structlog.stdlib.ProcessorFormatter(
        **{k: v for k, v in config["formatters"]["structured"].items() if k != "()"}
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        logger.warning("Booting worker with pid: %s", 4242)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_console_format_is_for_people_and_json_for_machines():
    people = render("console", "gunicorn.error.test")
    assert "Booting worker with pid: 4242" in people and not people.startswith("{")
    machines = render("json", "gunicorn.error.test")
    assert '"event": "Booting worker with pid: 4242"' in machines
    assert logging_config("INFO")["loggers"]["gunicorn.error"]["handlers"] == ["console"]
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logging_config("INFO", "xml")
