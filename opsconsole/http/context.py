"""Request correlation: X-Request-ID and W3C traceparent in, out, into logs and audit rows.

The values live in contextvars so services, audit.record() and log lines read them without
threading a request object through every call; workers bind their own with bound_context().
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog

REQUEST_ID_HEADER = "X-Request-ID"
TRACEPARENT_HEADER = "traceparent"

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# version-traceid-parentid-flags; all-zero ids are invalid per the W3C spec.
_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
# The id this server minted for the request or worker run, whatever the caller sent.
server_request_id_var: ContextVar[str] = ContextVar("server_request_id", default="")
traceparent_var: ContextVar[str] = ContextVar("traceparent", default="")
# While a web request is answered: the monotonic time by which it must have answered, so
# provider calls get the short web timeout and never run past it (None outside requests).
web_deadline_var: ContextVar[float | None] = ContextVar("web_deadline", default=None)
# While a request runs on a session the identity provider did not verify because it is down
# (a cached session, or the break-glass account): how, and why it is down
# (opsconsole/access/identity.py). Every audit row the request writes says so.
auth_fallback_var: ContextVar[dict[str, str] | None] = ContextVar("auth_fallback", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def clean_request_id(raw: str | None) -> str:
    """A caller's id when it is well-formed (safe to log and store), else ""."""
    if raw and _REQUEST_ID_RE.match(raw):
        return raw
    return ""


def clean_traceparent(raw: str | None) -> str:
    """Continue the caller's trace with a new span id for this hop, or start a new trace."""
    if raw:
        match = _TRACEPARENT_RE.match(raw.strip().lower())
        if match:
            version, trace_id, parent_id, flags = match.groups()
            if version != "ff" and set(trace_id) != {"0"} and set(parent_id) != {"0"}:
                return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"
    return new_traceparent()


def current_request_id() -> str:
    return request_id_var.get()


def current_server_request_id() -> str:
    return server_request_id_var.get()


def current_traceparent() -> str:
    return traceparent_var.get()


@contextmanager
def bound_context(*, request_id: str = "", traceparent: str = "") -> Iterator[None]:
    """Bind correlation ids for a block of work outside a request (workers, commands)."""
    server_request_id = new_request_id()
    request_id = request_id or server_request_id
    traceparent = traceparent or new_traceparent()
    rid_token = request_id_var.set(request_id)
    server_token = server_request_id_var.set(server_request_id)
    tp_token = traceparent_var.set(traceparent)
    with structlog.contextvars.bound_contextvars(
        request_id=request_id, server_request_id=server_request_id, traceparent=traceparent
    ):
        try:
            yield
        finally:
            request_id_var.reset(rid_token)
            server_request_id_var.reset(server_token)
            traceparent_var.reset(tp_token)
