"""Integrations whose deliveries are failing, for the overview's attention list and the
integration_deliveries probe: the last hour's outcomes from the per-minute delivery rollups
(never the queue) and each circuit that is not closed.

A circuit that opened holds its integration's deliveries back, so nothing lands in the DLQ
and nothing is "stuck" while every probe fails: counting only stuck rows, such an
integration would look healthy. Here it reads "42 retried, 0 succeeded in the last hour,
circuit open" in red."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from opsconsole.monitoring.overview_attention import AttentionRow
from recovery.models import DeliveryRollup, Integration, ProviderCircuit

WINDOW = timedelta(hours=1)
WINDOW_TEXT = "in the last hour"


@dataclass(frozen=True)
class FailingIntegration:
    integration_id: int
    name: str
    circuit: str  # closed | open | draining
    opened_at: datetime | None
    succeeded: int
    retried: int
    failed: int
    dead_lettered: int

    @property
    def level(self) -> str:
        """Red while nothing gets through; amber while some does (a draining circuit)."""
        return "degraded" if self.succeeded else "error"

    @property
    def text(self) -> str:
        parts = [f"{self.retried} retried, {self.succeeded} succeeded"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.dead_lettered:
            parts.append(f"{self.dead_lettered} dead-lettered")
        circuit = f"circuit {self.circuit}"
        if self.circuit == ProviderCircuit.State.OPEN and self.opened_at:
            circuit += f" since {timezone.localtime(self.opened_at):%H:%M}"
        return f"{', '.join(parts)} {WINDOW_TEXT}; {circuit}"


def failing_integrations(*, window: timedelta = WINDOW) -> list[FailingIntegration]:
    """Integrations whose circuit is not closed, or whose every delivery in `window` failed."""
    since = timezone.now() - window
    totals: dict[int, dict[str, Any]] = {
        row["integration_id"]: dict(row)
        for row in DeliveryRollup.objects.filter(minute__gt=since)
        .values("integration_id")
        .annotate(
            succeeded_sum=Sum("succeeded"),
            retried_sum=Sum("retry_scheduled"),
            failed_sum=Sum("failed"),
            dlq_sum=Sum("dlq"),
        )
    }
    circuits = {
        circuit.integration_id: circuit
        for circuit in ProviderCircuit.objects.exclude(state=ProviderCircuit.State.CLOSED)
    }
    failing_ids = set(circuits) | {
        pk
        for pk, row in totals.items()
        if not row["succeeded_sum"] and (row["retried_sum"] or row["failed_sum"] or row["dlq_sum"])
    }
    names = dict(Integration.objects.filter(pk__in=failing_ids).values_list("pk", "name"))
    failing = []
    for pk in failing_ids:
        row = totals.get(pk, {})
        circuit = circuits.get(pk)
        failing.append(
            FailingIntegration(
                integration_id=pk,
                name=names.get(pk, str(pk)),
                circuit=circuit.state if circuit else ProviderCircuit.State.CLOSED,
                opened_at=circuit.opened_at if circuit else None,
                succeeded=int(row.get("succeeded_sum") or 0),
                retried=int(row.get("retried_sum") or 0),
                failed=int(row.get("failed_sum") or 0),
                dead_lettered=int(row.get("dlq_sum") or 0),
            )
        )
    return sorted(failing, key=lambda f: (f.level != "error", f.name))


def failing_integration_rows() -> list[AttentionRow]:
    """The overview's attention rows, each linking to the integration's page."""
    return [
        AttentionRow(
            level=failing.level,
            kind="integration",
            name=failing.name,
            text=failing.text,
            link=reverse("admin:recovery_integration_change", args=[failing.integration_id]),
        )
        for failing in failing_integrations()
    ]
