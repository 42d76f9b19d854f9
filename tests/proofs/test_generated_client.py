"""A client nobody here wrote: generated from /api/schema/ by openapi-python-client, it
drives a real flow against a live server, with typed answers, typed errors and the
Idempotency-Key as a generated argument."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from knox.models import AuthToken

from tests.bookings.factories import ResourceFactory, slot
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import IntegrationFactory, ParkedItemFactory

pytestmark = pytest.mark.django_db(transaction=True)
VENV_BIN = Path(sys.executable).parent


def generated_client(live_server, tmp_path: Path):
    with urllib.request.urlopen(f"{live_server.url}/api/schema/?format=json") as answer:
        schema = json.load(answer)
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    subprocess.run(
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--meta",
            "none",
            "--path",
            str(tmp_path / "schema.json"),
            "--output-path",
            str(tmp_path / "opsconsole_client"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"},
        timeout=300,
    )
    sys.path.insert(0, str(tmp_path))
    return importlib.import_module("opsconsole_client")


def key_for(user) -> str:
    return AuthToken.objects.create(user=user)[1]


def test_a_generated_client_replays_reads_audit_lists_resources_and_books(live_server, tmp_path):
    operator = UserFactory(username="opal", groups=["Support operator"])
    customer = UserFactory(username="ana", groups=["Booking client"])
    integration = IntegrationFactory(name="erp")
    parked = ParkedItemFactory(integration=integration, status="dlq")
    court = ResourceFactory(name="court 1")

    api = generated_client(live_server, tmp_path)
    client_module = importlib.import_module("opsconsole_client.client")
    models = importlib.import_module("opsconsole_client.models")
    queue = importlib.import_module(
        "opsconsole_client.api.platform.platform_integrations_recovery_queue_retrieve"
    )
    replay = importlib.import_module(
        "opsconsole_client.api.platform.platform_integrations_recovery_queue_replay_create"
    )
    audit_events = importlib.import_module("opsconsole_client.api.api.audit_events_list")
    resources = importlib.import_module("opsconsole_client.api.api.bookings_resources_list")
    hold_create = importlib.import_module("opsconsole_client.api.api.api_v1_bookings_holds_create")
    hold_confirm = importlib.import_module(
        "opsconsole_client.api.api.api_v1_bookings_holds_confirm_create"
    )
    assert api.AuthenticatedClient is client_module.AuthenticatedClient
    # The generated client sends `Authorization: Bearer <key>`, which the API accepts.
    ops = api.AuthenticatedClient(base_url=live_server.url, token=key_for(operator))
    booker = api.AuthenticatedClient(base_url=live_server.url, token=key_for(customer))

    dlq_status = models.PlatformIntegrationsRecoveryQueueRetrieveStatusItem("dlq")
    listed = queue.sync(str(integration.pk), client=ops, status=[dlq_status])
    assert isinstance(listed, models.RecoveryQueueListApiOutput)
    assert [item.id for item in listed.items] == [parked.pk]

    body = models.RecoveryItemReplayApiInput(reason="ERP is back (INC-7)")
    first = replay.sync_detailed(
        str(integration.pk), str(parked.pk), client=ops, body=body, idempotency_key="replay-1"
    )
    again = replay.sync_detailed(
        str(integration.pk), str(parked.pk), client=ops, body=body, idempotency_key="replay-1"
    )
    assert first.status_code == 202 and isinstance(first.parsed, models.RecoveryItemOutput)
    assert first.parsed.status == "replayed"
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (202, "true")
    assert again.parsed.to_dict() == first.parsed.to_dict()

    trail = audit_events.sync(
        client=ops, object_type="recovery.recoveryitem", object_id=str(parked.pk)
    )
    assert isinstance(trail, models.AuditEventPage)
    replayed = [e for e in trail.items if e.event == "platform.integration.recovery.replayed"]
    assert [(e.actor, e.reason) for e in replayed] == [("opal", "ERP is back (INC-7)")]

    page = resources.sync(client=booker)
    assert isinstance(page, models.ResourcePage)
    assert [(r.id, r.name) for r in page.items] == [(court.pk, "court 1")]

    start, end = slot(hour=10)
    wanted = models.BookingHoldCreateApiInput(resource_id=court.pk, start_time=start, end_time=end)
    hold = hold_create.sync(client=booker, body=wanted, idempotency_key="hold-1")
    assert isinstance(hold, models.HoldOutput) and hold.status == "ACTIVE"
    booking = hold_confirm.sync(str(hold.id), client=booker, idempotency_key="confirm-1")
    assert isinstance(booking, models.BookingOutput) and booking.status == "CONFIRMED"

    taken = hold_create.sync_detailed(client=booker, body=wanted, idempotency_key="hold-2")
    assert taken.status_code == 409
    assert isinstance(taken.parsed, models.ErrorEnvelope)
    assert taken.parsed.error.code == "BKG-409-SLOT-UNAVAILABLE"
    assert taken.parsed.error.request_id == taken.headers["X-Request-ID"]

    # DELETE answers what its schema says (200 with the disabled integration), which the
    # generated client parses rather than raising on a body it was told would not come.
    retired = IntegrationFactory(name="old-crm")
    destroy = importlib.import_module(
        "opsconsole_client.api.platform.platform_integrations_destroy"
    )
    gone = destroy.sync_detailed(str(retired.pk), client=ops, idempotency_key="delete-1")
    assert gone.status_code == 200
    assert gone.parsed is not None and gone.parsed.enabled is False


def generated_operations(schema: dict):
    """(module name, method, path, operation) of every operation, named as
    openapi-python-client names its modules (the operationId in snake case)."""
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            name = re.sub(r"[^a-z0-9]+", "_", operation["operationId"].lower()).strip("_")
            yield name, method, path, operation


def example_bodies(schema: dict) -> dict[str, object]:
    """A body each operation's schema allows, made by schemathesis from that schema, by
    operation label ("POST /path")."""
    import schemathesis

    bodies: dict[str, object] = {}
    for result in schemathesis.openapi.from_dict(schema).get_all_operations():
        operation = result.ok()
        if operation.body:
            bodies[operation.label] = first_body(operation)
    return bodies


def first_body(operation) -> object:
    from hypothesis import HealthCheck, given, settings

    found: list = []

    @settings(max_examples=1, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def take(case) -> None:
        found.append(case.body)

    take()
    return found[0]


def body_model(annotation: object, models: object) -> type:
    """The generated model a `body` argument is annotated with (a name, or a union of
    them when the operation takes more than one media type: the JSON one comes first)."""
    for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(annotation)):
        model = getattr(models, name, None)
        if isinstance(model, type) and hasattr(model, "from_dict"):
            return model
    raise AssertionError(f"no generated model in {annotation!r}")


def test_the_generated_client_round_trips_every_operation(live_server, tmp_path):
    """Every operation called through the generated client with arguments its schema
    allows: whatever it answers is a status the schema documents, and the client parses it
    into the model the schema names (a typed answer or the error envelope)."""
    operator = UserFactory(username="opal", groups=["Support operator"])
    api = generated_client(live_server, tmp_path)
    with urllib.request.urlopen(f"{live_server.url}/api/schema/?format=json") as answer:
        schema = json.load(answer)
    ops = api.AuthenticatedClient(base_url=live_server.url, token=key_for(operator))
    models = importlib.import_module("opsconsole_client.models")
    bodies = example_bodies(schema)
    called = 0
    for name, method, path, operation in generated_operations(schema):
        tag = operation.get("tags", ["default"])[0]
        module = importlib.import_module(f"opsconsole_client.api.{tag}.{name}")
        signature = inspect.signature(module.sync_detailed)
        arguments: dict = {"client": ops}
        for parameter in operation.get("parameters", []):
            argument = re.sub(r"[^a-z0-9]+", "_", parameter["name"].lower())
            if parameter["in"] == "path":
                arguments[argument] = 999_999 if parameter["name"].endswith("_id") else "none"
            elif parameter["name"] == "Idempotency-Key":
                arguments["idempotency_key"] = f"round-trip-{name}"
            elif parameter.get("required"):
                arguments[argument] = "nobody@example.test"
        if "body" in signature.parameters:
            model = body_model(signature.parameters["body"].annotation, models)
            data = bodies.get(f"{method.upper()} {path}")
            arguments["body"] = model.from_dict(data if isinstance(data, dict) else {})
        response = module.sync_detailed(**arguments)
        documented = set(operation["responses"])
        assert str(response.status_code) in documented, (method, path, response.status_code)
        if "content" in operation["responses"][str(response.status_code)]:
            assert response.parsed is not None, (method, path, response.status_code)
        called += 1
    assert called >= 45
