"""The incident recorder: while an incident is open, a readyz payload is kept with it every
minute (seed 002's postmortem material), registered like every worker (readyz, metrics,
kill switch)."""

from __future__ import annotations

from enum import StrEnum

from opsconsole.claims import RunContext
from opsconsole.incidents import open_incident_ids, readyz_snapshot_capture
from opsconsole.workers import BatchWorker, register_worker


@register_worker
class IncidentRecorder(BatchWorker):
    name = "incident_recorder"
    description = "Every minute while an incident is open: a readyz snapshot kept with it"
    schedule_task = "opsconsole.tasks.run_incident_recorder"
    schedule_minutes = 1

    class Outcome(StrEnum):
        CAPTURED = "captured"

    def claim(self, run: RunContext, *, limit: int) -> list[str]:
        # One item per run: the snapshot, taken once and kept with every open incident.
        return ["readyz"] if open_incident_ids() else []

    def process(self, item_id: str, run: RunContext) -> Outcome:
        readyz_snapshot_capture()
        return self.Outcome.CAPTURED
