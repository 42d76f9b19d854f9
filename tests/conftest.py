from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from rest_framework.test import APIClient

from opsconsole.monitoring.tracing import configure_tracing, shutdown_tracing
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import IntegrationFactory


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing() -> Iterator[None]:
    """Tests hash passwords with a fast hasher. The configured one costs a second or more
    a hash by design (it slows down guessing), which every user a test makes and every
    form login would pay."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    """The shared cache (probe results) outlives a test's rollback: every test starts with
    an empty one. Rate-limit counters are rows, which the rollback clears."""
    from django.core.cache import cache

    # A test without database access, or with the database down, has no counters to clear.
    with contextlib.suppress(Exception):
        cache.clear()
    yield


@pytest.fixture
def integration(db: None, httpserver):
    """The CRM integration, delivering to the stand-in server at /hooks/crm."""
    return IntegrationFactory(name="crm", endpoint_url=httpserver.url_for("/hooks/crm"))


@pytest.fixture
def ai_model(httpserver, settings):
    """The AI help configured against the stand-in server, which speaks the chat completions
    wire format under /v1 (each test says what it answers)."""
    settings.AI_API_BASE_URL = httpserver.url_for("/v1")
    settings.AI_API_KEY = "sk-local-test"
    settings.AI_MODEL = "ops-model"
    return httpserver


@pytest.fixture
def viewer(db: None) -> User:
    return UserFactory(username="viewer", groups=["Support viewer"])


@pytest.fixture
def operator(db: None) -> User:
    return UserFactory(username="operator", groups=["Support operator"])


@pytest.fixture
def outsider(db: None) -> User:
    """Signed in, but in no support group."""
    return UserFactory(username="outsider")


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
    client.force_login(UserFactory(username="root", superuser=True))
    return client


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


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Debian chromium for every browser test (tests/proofs, tests/runbooks):
    Playwright's sync API keeps an event loop on this thread, so a second one started by
    another folder's fixture would refuse to run inside it."""
    import os

    from playwright.sync_api import sync_playwright

    # The ORM calls the tests make between page steps are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


FAILED_PAGES = Path(__file__).resolve().parents[1] / "var" / "screenshots"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the test item, so `page` knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser, request) -> Iterator[object]:
    """A fresh browser page per test; a failing test leaves its screenshot in var/screenshots/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        FAILED_PAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(FAILED_PAGES / f"{request.node.name}.png"), full_page=True)
    context.close()


def pytest_collection_modifyitems(config, items) -> None:
    """Browser walks, the scale-out clusters and the tests that kill worker processes are
    `system` tests: `make test` runs them after the parallel suite, a file per process (each
    starts a live server, a browser, a cluster or worker processes of its own), and `make
    check` leaves them out."""
    for item in items:
        if (
            item.get_closest_marker("browser")
            or item.get_closest_marker("processes")
            or "scaleout" in item.path.parts
        ):
            item.add_marker(pytest.mark.system)


@pytest.fixture(autouse=True)
def fresh_delivery_destinations() -> Iterator[None]:
    """The process's delivery loop keeps each endpoint's checked address for a while; a
    test that changes the outbound rules or the resolver must not leave its verdict to the
    next test, which reuses the same stand-in endpoint's URL."""
    yield
    from recovery.integrations.delivery.pipeline import forget_destinations

    forget_destinations()


@pytest.fixture
def collector(httpserver):
    """A local OTLP/HTTP collector; yields a function that flushes and returns the spans."""
    httpserver.expect_request("/v1/traces", method="POST").respond_with_data("", status=200)
    provider = configure_tracing(endpoint=httpserver.url_for("/"), service_name="smplat-api")

    def exported() -> list[tuple[dict, object]]:
        provider.force_flush()
        spans = []
        for request, _ in httpserver.log:
            if request.path != "/v1/traces":
                continue
            message = ExportTraceServiceRequest.FromString(request.get_data())
            for resource_spans in message.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    spans += [(resource, span) for span in scope.spans]
        return spans

    yield exported
    shutdown_tracing()
