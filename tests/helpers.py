"""What tests call to act as a client or an operator, and to race: API clients holding a
token, admin action posts, the error envelope, real concurrent sessions."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.db import connections
from knox.models import AuthToken
from rest_framework.test import APIClient


def token_client(user: User) -> APIClient:
    client = APIClient()
    _, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def station_client(station_id: str) -> APIClient:
    """A client holding a fresh credential issued to `station_id`."""
    from payments.stations import station_credential_issue

    _, key = station_credential_issue(station_id=station_id, actor="test", reason="test station")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Station {key}")
    return client


def action_post(client, url: str, action: str, ids, **extra):
    """POST an admin changelist action for the given ids (add confirm/reason to act)."""
    return client.post(
        url, {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(i) for i in ids], **extra}
    )


def error_of(response) -> dict:
    """The envelope's inner error object, asserting the envelope shape on the way."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details", "request_id"}, body
    assert body["error"]["request_id"] == response["X-Request-ID"]
    return body["error"]


def run_concurrently(call, count: int) -> list:
    """Start `count` threads on `call(index)` at one barrier; return their results.

    Each thread closes its own database connection, so PostgreSQL sees real separate
    sessions racing, not one connection shared.
    """
    barrier = threading.Barrier(count)
    results: list = []
    lock = threading.Lock()

    def run(index: int) -> None:
        try:
            barrier.wait()
            result = call(index)
            with lock:
                results.append(result)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@contextlib.contextmanager
def schema_operations() -> Iterator[list]:
    """Every operation of /api/schema/ as schemathesis loads it, called straight through
    the WSGI app. That would close the test's connection around each request; Django's own
    test client disconnects these handlers the same way."""
    import schemathesis
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from opsconsole.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
        yield [result.ok() for result in schema.get_all_operations()]
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def repeatable_examples(count: int):
    """Hypothesis settings for generated API calls: `count` examples, the same ones on every
    run (derandomized, no example database), no deadline or health check to trip on a slow
    request."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
