from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from knox.models import AuthToken
from rest_framework.test import APIClient

from opsconsole.roles import ensure_support_groups


def make_user(username: str, *groups: str, superuser: bool = False) -> User:
    # Transactional tests flush the tables, data-migration rows included.
    ensure_support_groups(ContentType, Permission, Group)
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.test", "pw-123456")
    else:
        user = User.objects.create_user(username, f"{username}@example.test", "pw-123456")
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


def token_client(user: User) -> APIClient:
    client = APIClient()
    _, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    """Rate-limit and failed-token counters live in the shared cache, which outlives a
    test's rollback: every test starts with none."""
    from django.core.cache import cache

    # A test without database access, or with the database down, has no counters to clear.
    with contextlib.suppress(Exception):
        cache.clear()
    yield


def station_client(station_id: str) -> APIClient:
    """A client holding a fresh credential issued to `station_id`."""
    from payments.stations import station_credential_issue

    _, key = station_credential_issue(station_id=station_id, actor="test", reason="test station")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Station {key}")
    return client


@pytest.fixture
def viewer(db: None) -> User:
    return make_user("viewer", "Support viewer")


@pytest.fixture
def operator(db: None) -> User:
    return make_user("operator", "Support operator")


@pytest.fixture
def outsider(db: None) -> User:
    """Signed in, but in no support group."""
    return make_user("outsider")


@pytest.fixture
def viewer_client(viewer: User) -> APIClient:
    return token_client(viewer)


@pytest.fixture
def operator_client(operator: User) -> APIClient:
    return token_client(operator)


@pytest.fixture
def outsider_client(outsider: User) -> APIClient:
    return token_client(outsider)


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


METRICS_TOKEN = "test-metrics-token"


@pytest.fixture
def monitoring_client(settings) -> APIClient:
    """A scraper: no user, but the metrics bearer token (readyz details, /metrics)."""
    settings.METRICS_BEARER_TOKEN = METRICS_TOKEN
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    return client


@pytest.fixture
def admin_client(client, db):
    """The Django test client, signed in as a superuser named root."""
    client.force_login(make_user("root", superuser=True))
    return client


def action_post(client, url: str, action: str, ids, **extra):
    """POST an admin changelist action for the given ids (add confirm/reason to act)."""
    return client.post(
        url, {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(i) for i in ids], **extra}
    )


@pytest.fixture
def database_down() -> Iterator[None]:
    """Point the default connection at a port nothing listens on: a real connection failure.

    Use with transactional tests only (no open test transaction to lose).
    """
    connection = connections["default"]
    assert connection.vendor == "postgresql", "outage tests run in the PostgreSQL suite"
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = "1"
    connection.settings_dict["HOST"] = "127.0.0.1"
    connection.settings_dict["OPTIONS"] = {**saved.get("OPTIONS", {}), "connect_timeout": 2}
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


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


@pytest.fixture(scope="session")
def make_httpserver():
    """The stand-in provider answers each request in its own thread, like a real server:
    a request that hangs (the timeout tests) must not hold up the next test's requests."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="localhost", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def hanging_handler():
    """A provider handler that answers too late: `make(seconds)` for respond_with_handler.

    The test waits for every hung answer to finish at teardown, so a late request never
    lands in the next test's request log.
    """
    from werkzeug import Response

    finished: list[threading.Event] = []

    def make(seconds: float = 1.0, body: str = "late"):
        def handler(request):
            done = threading.Event()
            finished.append(done)
            try:
                threading.Event().wait(seconds)
                return Response(body)
            finally:
                done.set()

        return handler

    yield make
    for done in list(finished):
        done.wait(timeout=10)
