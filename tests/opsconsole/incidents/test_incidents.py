"""Incidents (docs/runbooks/incident-response.md): opened, noted and resolved from the admin,
every step audited; while one is open, readyz snapshots and failed server actions are kept with
it; the API lists incidents and exports the postmortem material."""

from __future__ import annotations

import pytest
from django.test import Client

from opsconsole.incidents.recorder import IncidentRecorder
from opsconsole.models import AuditEvent, Incident, IncidentCapture
from opsconsole.workers import BatchWorker
from tests.helpers import action_post, error_of
from tests.opsconsole.factories import UserFactory
from tests.workers import run_worker

CHANGELIST = "/admin/platform/incident/"
TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def staff_operator(db) -> Client:
    user = UserFactory(username="oncall", groups=["Support operator"])
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def open_from_admin(client: Client, title: str = "Checkout links fail") -> Incident:
    response = client.post(
        f"{CHANGELIST}add/", {"title": title, "severity": "sev2", "reason": "paged at 03:10"}
    )
    assert response.status_code == 302, response.content[:500]
    return Incident.objects.get(title=title)


def change_form(incident: Incident, **fields: str) -> dict[str, str]:
    data = {
        "notes-TOTAL_FORMS": "1",
        "notes-INITIAL_FORMS": "0",
        "notes-MIN_NUM_FORMS": "0",
        "notes-MAX_NUM_FORMS": "1000",
        "notes-0-text": "",
        "reason": "write-up",
    }
    for name in ("summary", "root_cause", "blast_radius", "trace_ids", "links"):
        data[name] = getattr(incident, name)
    data.update(fields)
    return data


@pytest.mark.django_db
def test_an_incident_is_opened_noted_written_up_and_resolved_from_the_admin(staff_operator):
    incident = open_from_admin(staff_operator)
    assert (incident.status, incident.opened_by) == ("open", "oncall")
    url = f"{CHANGELIST}{incident.pk}/change/"
    noted = staff_operator.post(
        url,
        change_form(
            incident,
            **{"notes-0-text": "Stripe answers 503 since 03:02", "reason": "pager at 03:05"},
        ),
    )
    assert noted.status_code == 302
    assert [note.text for note in incident.notes.all()] == ["Stripe answers 503 since 03:02"]
    # The reason the operator gave with the note is kept with it.
    assert AuditEvent.objects.get(event="platform.incident.noted").reason == "pager at 03:05"
    # Resolving needs the write-up: an incident without one is not a legal row.
    action_post(
        staff_operator, CHANGELIST, "resolve_incidents", [incident.pk], confirm="yes", reason="x"
    )
    incident.refresh_from_db()
    assert incident.status == "open"
    staff_operator.post(
        url,
        change_form(
            incident,
            summary="Checkout links failed for 40 minutes",
            root_cause="An expired Stripe key after rotation",
            blast_radius="212 sessions; no payment lost",
            trace_ids=TRACE,
            links="https://status.example.com/incidents/17",
        ),
    )
    action_post(
        staff_operator,
        CHANGELIST,
        "resolve_incidents",
        [incident.pk],
        confirm="yes",
        reason="key replaced, links regenerated",
    )
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_by) == ("resolved", "oncall")
    resolution = AuditEvent.objects.get(event="incident_resolution", object_id=str(incident.pk))
    assert resolution.after_state["summary"] == "Checkout links failed for 40 minutes"
    assert resolution.after_state["root_cause"] == "An expired Stripe key after rotation"
    assert resolution.after_state["blast_radius"] == "212 sessions; no payment lost"
    assert resolution.after_state["trace_ids"] == [TRACE]
    assert resolution.after_state["links"] == ["https://status.example.com/incidents/17"]
    assert (resolution.actor, resolution.reason) == ("oncall", "key replaced, links regenerated")
    events = set(
        AuditEvent.objects.filter(
            object_id=str(incident.pk), object_type__contains="incident"
        ).values_list("event", flat=True)
    )
    assert {"platform.incident.opened", "platform.incident.noted"} <= events
    assert "platform.incident.updated" in events
    # Resolved, its record no longer changes.
    assert staff_operator.get(url).status_code == 200
    assert 'name="summary"' not in staff_operator.get(url).content.decode()


@pytest.mark.django_db
def test_a_viewer_sees_incidents_but_cannot_open_or_resolve_them(client, viewer):
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    incident = Incident.objects.create(title="t", opened_by="x", summary="s", root_cause="r")
    # Its page tells a viewer nothing about a Resolve… a viewer is never offered.
    page = client.get(f"{CHANGELIST}{incident.pk}/change/").content.decode()
    assert "To resolve" not in page and "Resolve…" not in page
    action_post(client, CHANGELIST, "resolve_incidents", [incident.pk], confirm="yes", reason="x")
    incident.refresh_from_db()
    assert incident.status == "open"


@pytest.mark.django_db
def test_while_open_readyz_snapshots_and_failed_actions_are_kept_then_exported(
    staff_operator, operator_client, viewer_client
):
    assert run_worker(IncidentRecorder).claimed == 0  # nothing open: nothing kept
    incident = open_from_admin(staff_operator)
    run_worker(IncidentRecorder)
    run_worker(IncidentRecorder)
    failed = operator_client.post(
        "/platform/integrations/999999/rotate-secret",
        {"reason": "x"},
        format="json",
        HTTP_TRACEPARENT=f"00-{TRACE}-b7ad6b7169203331-01",
    )
    assert failed.status_code >= 400
    kinds = list(incident.captures.values_list("kind", flat=True))
    assert kinds.count("readyz") == 2 and kinds.count("server_action_failed") == 1

    class Crashing(BatchWorker):
        name = "incident_test_crasher"

        def claim(self, run, *, limit):
            raise RuntimeError("the broker is gone")

    with pytest.raises(RuntimeError):
        Crashing().run_once(triggered_by="manual")
    crash = incident.captures.get(
        kind="server_action_failed", payload__worker="incident_test_crasher"
    )
    assert "the broker is gone" in crash.payload["error"] and len(crash.trace_id) == 32

    export = viewer_client.get(f"/api/v1/incidents/{incident.pk}/export")
    assert export.status_code == 200
    body = export.json()
    assert body["title"] == "Checkout links fail" and body["status"] == "open"
    assert len(body["readyz"]) == 2 and body["readyz"][0]["payload"]["components"]
    request_failure = next(a for a in body["failed_actions"] if "path" in a)
    assert request_failure["trace_id"] == TRACE
    assert request_failure["path"] == "/platform/integrations/999999/rotate-secret"
    assert TRACE in body["trace_ids"] and crash.trace_id in body["trace_ids"]

    listed = viewer_client.get("/api/v1/incidents", {"status": "open"}).json()
    assert [item["id"] for item in listed["items"]] == [incident.pk]
    assert viewer_client.get("/api/v1/incidents", {"status": "resolved"}).json()["items"] == []

    incident.summary, incident.root_cause = "s", "r"
    incident.save()
    action_post(
        staff_operator, CHANGELIST, "resolve_incidents", [incident.pk], confirm="yes", reason="ok"
    )
    before = IncidentCapture.objects.count()
    run_worker(IncidentRecorder)
    operator_client.post("/platform/integrations/999999/rotate-secret", {}, format="json")
    assert IncidentCapture.objects.count() == before  # resolved: nothing more is kept


@pytest.mark.django_db
def test_the_incident_api_refuses_bad_input_in_the_envelope(viewer_client, anonymous_client):
    assert error_of(viewer_client.get("/api/v1/incidents/abc/export"))["code"] == (
        "OPS-400-INVALID-PAYLOAD"
    )
    assert viewer_client.get("/api/v1/incidents/424242/export").status_code == 404
    assert viewer_client.get("/api/v1/incidents", {"status": "closed"}).status_code == 400
    assert viewer_client.get("/api/v1/incidents", {"cursor": "nope"}).status_code == 400
    assert anonymous_client.get("/api/v1/incidents").status_code == 401
