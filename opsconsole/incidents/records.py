"""Incidents (docs/runbooks/incident-response.md): opened, noted while they run, resolved with a
write-up that the `incident_resolution` audit entry carries; while one is open, the postmortem
material is kept with it (a readyz payload a minute, every `server_action_failed` event, trace
ids), so the export has what a postmortem needs without anyone saving it by hand."""

from __future__ import annotations

import json
from typing import Any

import structlog
from django.db import connection, transaction
from django.utils import timezone

from opsconsole.evidence import audit
from opsconsole.http.context import current_traceparent
from opsconsole.http.errors import Conflict, InvalidInput
from opsconsole.models import Incident, IncidentCapture, IncidentNote
from opsconsole.monitoring import health

logger = structlog.get_logger(__name__)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def trace_id_of(traceparent: str) -> str:
    """The trace id of a W3C traceparent (version-traceid-spanid-flags), or ""."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""


@transaction.atomic
def incident_open(*, title: str, severity: str, actor: audit.Actor, reason: str) -> Incident:
    if not title.strip():
        raise InvalidInput(details={"title": "What is happening, in a line."})
    if severity not in Incident.Severity.values:
        raise InvalidInput(details={"severity": f"One of {', '.join(Incident.Severity.values)}."})
    incident = Incident.objects.create(
        title=title.strip(), severity=severity, opened_by=audit.actor_label(actor)
    )
    audit.record(
        "platform.incident.opened",
        obj=incident,
        actor=actor,
        reason=reason,
        after={"title": incident.title, "severity": severity},
    )
    return incident


def _open_incident(incident_id: int) -> Incident:
    incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        raise InvalidInput(f"Incident {incident_id} does not exist.")
    if incident.status != Incident.Status.OPEN:
        raise Conflict("The incident is resolved; its record no longer changes.")
    return incident


@transaction.atomic
def incident_note_add(
    *, incident_id: int, text: str, actor: audit.Actor, reason: str = ""
) -> IncidentNote:
    if not text.strip():
        raise InvalidInput(details={"text": "The note is empty."})
    incident = _open_incident(incident_id)
    note = IncidentNote.objects.create(
        incident=incident, author=audit.actor_label(actor), text=text.strip()
    )
    audit.record(
        "platform.incident.noted",
        obj=incident,
        actor=actor,
        after={"note": note.text[:1000]},
        reason=reason,
    )
    return note


WRITEUP_FIELDS = ("summary", "root_cause", "blast_radius", "trace_ids", "links")


@transaction.atomic
def incident_writeup_update(
    *, incident_id: int, changes: dict[str, str], actor: audit.Actor, reason: str
) -> Incident:
    """Draft the write-up while the incident runs (summary, root cause, blast radius, trace
    ids, links); resolving requires the summary and the root cause."""
    unknown = sorted(set(changes) - set(WRITEUP_FIELDS))
    if unknown:
        raise InvalidInput(details={"fields": f"Not part of the write-up: {', '.join(unknown)}."})
    incident = _open_incident(incident_id)
    before = {name: getattr(incident, name) for name in changes}
    for name, value in changes.items():
        setattr(incident, name, value.strip())
    incident.save(update_fields=list(changes))
    audit.record(
        "platform.incident.updated",
        obj=incident,
        actor=actor,
        reason=reason,
        before=before,
        after={name: getattr(incident, name) for name in changes},
    )
    return incident


@transaction.atomic
def incident_resolve(*, incident_id: int, actor: audit.Actor, reason: str) -> Incident:
    """Resolve with the write-up: the `incident_resolution` audit entry carries the summary,
    root cause, blast radius, the trace ids (the write-up's and every captured one) and the
    links, so the audit log alone tells what happened."""
    incident = _open_incident(incident_id)
    missing = [name for name in ("summary", "root_cause") if not getattr(incident, name)]
    if missing:
        raise InvalidInput(
            "Write the summary and the root cause before resolving.",
            details={name: "Required to resolve." for name in missing},
        )
    incident.resolve()
    incident.resolved_by = audit.actor_label(actor)
    incident.resolved_at = timezone.now()
    incident.save()
    audit.record(
        "incident_resolution",
        obj=incident,
        actor=actor,
        reason=reason,
        before={"status": Incident.Status.OPEN},
        after={
            "status": incident.status,
            "summary": incident.summary,
            "root_cause": incident.root_cause,
            "blast_radius": incident.blast_radius,
            "trace_ids": incident_trace_ids(incident),
            "links": _lines(incident.links),
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat(),
        },
    )
    return incident


def incident_trace_ids(incident: Incident) -> list[str]:
    """The write-up's trace ids, then every captured one, each once."""
    captured = (
        incident.captures.exclude(trace_id="")
        .order_by("captured_at", "id")
        .values_list("trace_id", flat=True)
    )
    return list(dict.fromkeys([*_lines(incident.trace_ids), *captured]))


def open_incident_ids() -> list[int]:
    return list(Incident.objects.filter(status=Incident.Status.OPEN).values_list("pk", flat=True))


def readyz_snapshot_capture() -> int:
    """Keep one readyz payload with each open incident (the incident recorder's minute)."""
    incident_ids = open_incident_ids()
    if not incident_ids:
        return 0
    report = health.readiness()
    IncidentCapture.objects.bulk_create(
        IncidentCapture(incident_id=pk, kind=IncidentCapture.Kind.READYZ, payload=report)
        for pk in incident_ids
    )
    return len(incident_ids)


def failed_action_capture(fields: dict[str, Any]) -> None:
    """Keep a `server_action_failed` event with each open incident. Called where the line is
    logged; it never fails the caller (a failed capture is logged and dropped)."""
    if connection.in_atomic_block and connection.needs_rollback:
        return  # a broken transaction cannot write; the log line itself still goes out
    try:
        incident_ids = open_incident_ids()
        if not incident_ids:
            return
        traceparent = str(fields.get("traceparent") or current_traceparent())
        payload = {key: value for key, value in fields.items() if key != "traceparent"}
        payload["traceparent"] = traceparent
        IncidentCapture.objects.bulk_create(
            IncidentCapture(
                incident_id=pk,
                kind=IncidentCapture.Kind.FAILED_ACTION,
                trace_id=trace_id_of(traceparent),
                payload=payload,
            )
            for pk in incident_ids
        )
    except Exception:
        logger.warning("incident_capture_failed", exc_info=True)


def incident_export(incident: Incident) -> dict[str, Any]:
    """The postmortem material: the incident, its notes, the readyz payloads and
    failed server actions captured while it was open, and the trace ids to keep."""
    captures = list(incident.captures.all())
    return {
        **incident_summary(incident),
        "writeup": {
            "summary": incident.summary,
            "root_cause": incident.root_cause,
            "blast_radius": incident.blast_radius,
            "links": _lines(incident.links),
        },
        "notes": [
            {"at": note.created_at.isoformat(), "author": note.author, "text": note.text}
            for note in incident.notes.all()
        ],
        "readyz": [
            {"captured_at": capture.captured_at.isoformat(), "payload": capture.payload}
            for capture in captures
            if capture.kind == IncidentCapture.Kind.READYZ
        ],
        "failed_actions": [
            {
                "captured_at": capture.captured_at.isoformat(),
                "trace_id": capture.trace_id,
                **capture.payload,
            }
            for capture in captures
            if capture.kind == IncidentCapture.Kind.FAILED_ACTION
        ],
        "trace_ids": incident_trace_ids(incident),
    }


def incident_summary(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.pk,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "opened_by": incident.opened_by,
        "opened_at": incident.opened_at.isoformat(),
        "resolved_by": incident.resolved_by,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
    }


# What the model is asked for an incident's draft write-up (docs/runbooks/incident-response.md).
WRITEUP_INSTRUCTIONS = (
    "You draft the write-up of an operations incident for a booking-and-payments business. "
    "From the incident's notes, timeline, readiness snapshots and failed actions below, write "
    "four short sections: Summary, Root cause (say 'unknown' if the material does not show "
    "it), Blast radius, Follow-ups. Use only what the material says."
)
# The material is kept under this many characters: each readyz snapshot is reduced to the
# components that were not ready, then snapshots and failed actions are left out from the
# middle and the end (saying how many), so the text is never cut mid-way.
WRITEUP_MATERIAL_CHARS = 20_000


def _not_ready(snapshot: dict[str, Any]) -> dict[str, Any]:
    payload = snapshot.get("payload") or {}
    components = payload.get("components") or {}
    return {
        "captured_at": snapshot.get("captured_at"),
        "status": payload.get("status"),
        "not_ready": {
            name: component
            for name, component in components.items()
            if isinstance(component, dict) and component.get("status") != "ready"
        },
    }


def incident_writeup_material(incident: Incident) -> str:
    """The incident's export as text, for a person or a model to read, whole JSON under
    WRITEUP_MATERIAL_CHARS."""
    export = incident_export(incident)
    snapshots = [_not_ready(snapshot) for snapshot in export["readyz"]]
    actions = list(export["failed_actions"])
    left_out = {"readyz_snapshots": 0, "failed_actions": 0}

    def render() -> str:
        shown = {**export, "readyz": snapshots, "failed_actions": actions}
        if any(left_out.values()):
            shown["left_out_to_fit"] = dict(left_out)
        return json.dumps(shown, indent=1, default=str)

    text = render()
    while len(text) > WRITEUP_MATERIAL_CHARS and (len(snapshots) > 2 or actions):
        if len(snapshots) > 2:  # the first and the newest stay
            del snapshots[len(snapshots) // 2]
            left_out["readyz_snapshots"] += 1
        else:
            actions.pop()
            left_out["failed_actions"] += 1
        text = render()
    return text
