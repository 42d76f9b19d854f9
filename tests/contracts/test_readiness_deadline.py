"""Readiness as an orchestrator probes it, against a database that accepts connections and
never answers (a stalled primary, a black-holed proxy): readyz says 503 within its deadline
and asks nothing else once the database is silent; livez never touches the database and
answers at once even while readyz waits."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connections
from django.test import Client

from opsconsole.monitoring.health import READINESS_DEADLINE_SECONDS

# The deadline, plus room for a slow test machine; far below the 5 s connect timeout that
# each of the components would otherwise wait in turn.
ANSWERED_WITHIN = READINESS_DEADLINE_SECONDS + 1.5


@pytest.fixture
def silent_database() -> Iterator[int]:
    """A TCP listener that accepts every connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    yield server.getsockname()[1]
    stop.set()
    listener.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.fixture
def database_goes_silent(silent_database):
    """New connections (each readiness check opens its own) go to the silent listener; the
    test's own connection is left as it is."""
    settings_dict = connections["default"].settings_dict
    saved = dict(settings_dict)
    settings_dict.update(HOST="127.0.0.1", PORT=str(silent_database))
    yield
    settings_dict.clear()
    settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_readyz_answers_503_within_its_deadline_and_livez_at_once(database_goes_silent):
    answers: dict[str, object] = {}

    def probe_readyz() -> None:
        started = time.monotonic()
        response = Client().get("/api/v1/health/readyz")
        answers["readyz"] = (response.status_code, response.json(), time.monotonic() - started)

    readyz = threading.Thread(target=probe_readyz)
    readyz.start()
    time.sleep(0.3)  # readyz is waiting on the database now
    assert readyz.is_alive()
    started = time.monotonic()
    livez = Client().get("/api/v1/health/livez")
    livez_seconds = time.monotonic() - started
    assert (livez.status_code, livez.json()) == (200, {"status": "ok"})
    assert livez_seconds < 1.0, livez_seconds
    assert readyz.is_alive(), "livez answered while readyz was still waiting"

    readyz.join(timeout=30)
    status, body, seconds = answers["readyz"]
    assert status == 503
    assert seconds < ANSWERED_WITHIN, seconds
    assert body["status"] == "error"
    # Probes without credentials see statuses only; the database is the component in error,
    # and nothing else was asked once it was silent.
    components = body["components"]
    assert components["database"]["status"] == "error"
    assert {c["status"] for name, c in components.items() if name != "database"} == {"degraded"}


@pytest.mark.django_db(transaction=True)
def test_the_database_component_says_timeout_and_the_rest_were_not_asked(database_goes_silent):
    from opsconsole.monitoring.health import readiness

    started = time.monotonic()
    report = readiness()
    assert time.monotonic() - started < ANSWERED_WITHIN
    assert report["status"] == "error"
    assert report["components"]["database"] == {
        "status": "error",
        "details": {"error": "timeout", "deadline_seconds": READINESS_DEADLINE_SECONDS},
    }
    skipped = {"checked": False, "reason": "the database did not answer"}
    others = [c for name, c in report["components"].items() if name != "database"]
    assert len(others) >= 10
    assert all(c == {"status": "degraded", "details": skipped} for c in others)


@pytest.mark.django_db(transaction=True)
def test_with_the_database_answering_every_component_is_checked_side_by_side():
    from opsconsole.monitoring.health import readiness

    report = readiness()
    assert report["components"]["database"]["status"] == "ready"
    assert all(
        c["details"].get("checked", True) is not False for c in report["components"].values()
    )
