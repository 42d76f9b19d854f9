from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from opsconsole.integration_status import ProbeResult
from opsconsole.workers import BatchWorker, register_worker
from recovery import circuits, services
from recovery.adapters import DeliveryAdapter
from recovery.errors import LeaseLost
from recovery.models import Integration, RecoveryItem


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

    def __init__(self, *, adapter: DeliveryAdapter | None = None, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.adapter = adapter
        self._claimed: dict[int, RecoveryItem] = {}
        self._clean_circuits: set[int] = set()
        self._circuit_quota: dict[int, int] = {}

    def reset_claim_state(self) -> None:
        # A helper processor claims only closed-circuit integrations: the probe and drain
        # quota of tripped ones stays with the run's first processor.
        self._claimed = {}
        self._clean_circuits = set()
        self._circuit_quota = {}

    def begin_run(self) -> None:
        # Integrations with a tripped circuit get only their probe or drain quota, per run
        # however many batches the run claims.
        self._circuit_quota = circuits.probe_and_drain_quota()

    def claim(self, *, owner: str, limit: int) -> list[int]:
        claimed: list[services.ClaimedDelivery] = []
        for integration_id, quota in self._circuit_quota.items():
            taken = services.recovery_items_claim_due(
                owner=owner,
                limit=min(quota, limit - len(claimed)),
                lease_seconds=self.lease_seconds,
                integration_id=integration_id,
            )
            self._circuit_quota[integration_id] -= len(taken)
            claimed += taken
        self._circuit_quota = {key: left for key, left in self._circuit_quota.items() if left > 0}
        claimed += services.recovery_items_claim_due(
            owner=owner, limit=limit - len(claimed), lease_seconds=self.lease_seconds
        )
        self._claimed = {claim.item.pk: claim.item for claim in claimed}
        self._clean_circuits = {
            claim.item.integration_id for claim in claimed if claim.circuit_clean
        }
        return [claim.item.pk for claim in claimed]

    def process(self, item_id: int, *, owner: str) -> str:
        item = self._claimed.pop(item_id, None)
        integration_id = item.integration_id if item else None
        try:
            label = services.recovery_item_deliver(
                item_id=item_id,
                lease_owner=owner,
                adapter=self.adapter,
                item=item,
                circuit_clean=integration_id in self._clean_circuits,
            )
        except LeaseLost:
            return "lease_lost"
        if label != "succeeded":
            self._clean_circuits.discard(integration_id)
        return label


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
