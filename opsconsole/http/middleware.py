"""The request middleware: correlation ids in and out, the server span, and the
`server_action_failed` line (docs/runbooks/incident-response.md). It lives apart from context.py
so that the contextvars module imports nothing of the tracing that uses it (they formed an
import circle)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse

from opsconsole.http.context import (
    REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
    clean_request_id,
    new_request_id,
    request_id_var,
    server_request_id_var,
    traceparent_var,
    web_deadline_var,
)
from opsconsole.incidents.records import failed_action_capture
from opsconsole.monitoring.tracing import server_span
from opsconsole.outbound.guard import web_request_budget_seconds

logger = structlog.get_logger(__name__)
# One line per request, with its request id: the access log (gunicorn's own is off).
access_logger = structlog.get_logger("opsconsole.access")


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with server_span(
            request.method or "", request.path, request.headers.get(TRACEPARENT_HEADER)
        ) as span:
            response = self._handle(request, span.traceparent)
            span.finish(response.status_code)
        return response

    def _handle(self, request: HttpRequest, traceparent: str) -> HttpResponse:
        server_request_id = new_request_id()
        request_id = clean_request_id(request.headers.get(REQUEST_ID_HEADER)) or server_request_id
        request.request_id = request_id  # type: ignore[attr-defined]
        request.server_request_id = server_request_id  # type: ignore[attr-defined]
        request.traceparent = traceparent  # type: ignore[attr-defined]
        # Bound for the rest of this request's thread, not reset on the way out: Django logs
        # "Not Found"/"Internal Server Error" after the middleware chain has returned, and
        # those lines must carry the ids too. The next request starts by clearing them.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id, server_request_id=server_request_id, traceparent=traceparent
        )
        request_id_var.set(request_id)
        server_request_id_var.set(server_request_id)
        traceparent_var.set(traceparent)
        started = time.monotonic()
        answering = web_deadline_var.set(started + web_request_budget_seconds())
        try:
            response = self.get_response(request)
        finally:
            web_deadline_var.reset(answering)
        match = getattr(request, "resolver_match", None)
        access_logger.info(
            "http_request",
            method=request.method,
            path=request.path,
            route=getattr(match, "route", "") or "",
            status_code=response.status_code,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        response[REQUEST_ID_HEADER] = request_id
        response[TRACEPARENT_HEADER] = traceparent
        if request.method not in SAFE_METHODS and response.status_code >= 400:
            log_server_action_failed(request, response)
        return response


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def log_server_action_failed(request: HttpRequest, response: HttpResponse) -> None:
    """Every failed server action (an unsafe request that did not succeed) logs
    `server_action_failed` with the request id and trace id, for alerting and postmortems."""
    code = ""
    if response.get("Content-Type", "").startswith("application/json"):
        try:
            code = json.loads(response.content).get("error", {}).get("code", "")
        except (ValueError, AttributeError):
            code = ""
    log = logger.error if response.status_code >= 500 else logger.warning
    fields = {
        "method": request.method,
        "path": request.path,
        "status_code": response.status_code,
        "error_code": code,
        "user": getattr(getattr(request, "user", None), "username", "") or "",
    }
    log("server_action_failed", **fields)
    # Kept with any open incident, with the request's ids, for its postmortem export.
    failed_action_capture(
        {**fields, "request_id": getattr(request, "request_id", ""), "level": log.__name__}
    )
