"""The incident recorder: while an incident is open, a readyz payload is kept with it every
minute (the postmortem material, docs/runbooks/incident-response.md), registered like every
worker (readyz, metrics, kill switch)."""

from __future__ import annotations

from enum import StrEnum

from opsconsole.incidents.records import open_incident_ids, readyz_snapshot_capture
from opsconsole.workers import PeriodicWorker, register_worker
from opsconsole.workers.claims import RunContext


@register_worker
class IncidentRecorder(PeriodicWorker):
    name = "incident_recorder"
    description = "Every minute while an incident is open: a readyz snapshot kept with it"
    schedule_minutes = 1

    class Outcome(StrEnum):
        CAPTURED = "captured"

    def is_due(self) -> bool:
        return bool(open_incident_ids())

    def run_step(self, run: RunContext) -> Outcome:
        # One snapshot per run, kept with every open incident.
        readyz_snapshot_capture()
        return self.Outcome.CAPTURED
