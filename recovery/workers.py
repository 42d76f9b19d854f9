from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from django.conf import settings
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from opsconsole.claims import RunContext
from opsconsole.integration_status import ProbeResult
from opsconsole.workers import BatchWorker, register_worker
from recovery import circuits, services
from recovery.adapters import DeliveryAdapter
from recovery.errors import LeaseLost
from recovery.models import Integration, RecoveryItem


@dataclass
class DeliveryRun(RunContext):
    """A delivery processor's context: also the integrations whose circuit took a failure
    since the last claim (a later success there must write to the circuit)."""

    dirty_circuits: set[int] = field(default_factory=set)


@register_worker
class IntegrationDeliveryWorker(BatchWorker):
    """Delivers pending, retrying and replayed items that are due, one HTTP call each."""

    name = "integration_delivery_worker"
    description = "Integration deliveries: retries with backoff, DLQ on exhaustion (seed 001)"
    schedule_task = "recovery.tasks.run_integration_delivery_worker"
    schedule_minutes = 1

    lease_model = RecoveryItem

    def item_seconds(self) -> float:
        # The outside call's timeout, plus writing its outcome.
        timeout = getattr(getattr(self, "adapter", None), "timeout", None)
        return float(timeout or settings.INTEGRATION_HTTP_TIMEOUT_SECONDS) + 3

    class Outcome(StrEnum):
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # a permanent refusal
        DLQ = "dlq"  # retries exhausted
        RETRY_SCHEDULED = "retry_scheduled"
        HELD_PAUSED = "held_paused"  # the integration was paused after the claim
        LEASE_LOST = "lease_lost"

    def __init__(self, *, adapter: DeliveryAdapter | None = None, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.adapter = adapter

    def run_context(self, *, triggered_by: str, seconds: float = 0.0) -> DeliveryRun:
        return DeliveryRun(**vars(super().run_context(triggered_by=triggered_by, seconds=seconds)))

    def begin_run(self, run: RunContext) -> None:
        # Integrations with a tripped circuit get only their probe or drain quota, per run
        # however many batches the run claims; helper processors claim only closed circuits.
        run.quotas = dict(circuits.probe_and_drain_quota())

    def claim(self, run: DeliveryRun, *, limit: int) -> list[int]:
        # The claim reads each circuit's state afresh.
        run.dirty_circuits.clear()
        claimed: list[services.ClaimedDelivery] = []
        for integration_id, quota in list(run.quotas.items()):
            taken = services.recovery_items_claim_due(
                owner=run.owner,
                limit=min(quota, limit - len(claimed)),
                lease_seconds=self.lease_seconds,
                integration_id=integration_id,
            )
            run.quotas[integration_id] -= len(taken)
            claimed += taken
        run.quotas = {key: left for key, left in run.quotas.items() if left > 0}
        claimed += services.recovery_items_claim_due(
            owner=run.owner, limit=limit - len(claimed), lease_seconds=self.lease_seconds
        )
        for claim in claimed:
            run.hand_over(claim.item.pk, claim)
        return [claim.item.pk for claim in claimed]

    def process(self, item_id: int, run: DeliveryRun) -> Outcome:
        claim: services.ClaimedDelivery | None = run.take(item_id)
        item = claim.item if claim else None
        integration_id = item.integration_id if item else None
        try:
            outcome = self.Outcome(
                services.recovery_item_deliver(
                    item_id=item_id,
                    lease_owner=run.owner,
                    adapter=self.adapter,
                    item=item,
                    circuit_clean=integration_id not in run.dirty_circuits
                    and bool(claim and claim.circuit_clean),
                )
            )
        except LeaseLost:
            return self.Outcome.LEASE_LOST
        if outcome != self.Outcome.SUCCEEDED and integration_id is not None:
            # The circuit has a failure now: later items of the batch must write to it.
            run.dirty_circuits.add(integration_id)
        return outcome


def recovery_queue_metrics() -> Iterable[Metric]:
    depth = GaugeMetricFamily(
        "opsconsole_integration_recovery_items",
        "Recovery queue items by integration and status",
        labels=["integration", "status"],
    )
    rows = (
        RecoveryItem.objects.exclude(status=RecoveryItem.Status.SUCCEEDED)
        .values("integration__name", "status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        depth.add_metric([row["integration__name"], row["status"]], row["n"])
    return [depth]


def integration_deliveries_probe() -> ProbeResult:
    """Amber while any integration is paused or has dead-lettered deliveries."""
    dlq = dict(
        RecoveryItem.objects.filter(status=RecoveryItem.Status.DLQ)
        .values_list("integration__name")
        .annotate(n=Count("id"))
    )
    paused = list(Integration.objects.filter(paused=True).values_list("name", flat=True))
    details = {"paused": paused, "dlq": dlq}
    if paused or dlq:
        return ProbeResult("amber", f"{len(paused)} paused, {sum(dlq.values())} in DLQ", details)
    return ProbeResult("green", "delivering", details)
