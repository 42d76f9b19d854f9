"""A circuit breaker per integration (the failure inbox's provider breaker).

closed: deliveries flow. After CIRCUIT_FAILURE_THRESHOLD retryable failures in a row the
circuit opens: the integration's deliveries stop (readyz shows it degraded) except one probe
every CIRCUIT_PROBE_SECONDS. A probe that succeeds moves it to draining: deliveries resume at
CIRCUIT_DRAIN_PER_RUN per worker run, so a recovered provider is not flooded; once the
backlog is empty it closes. Both transitions are audited.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from opsconsole.evidence import audit
from opsconsole.monitoring.health import ComponentHealth
from recovery.models import Integration, ProviderCircuit, RecoveryItem

ACTOR = "worker:circuit_breaker"


def _transition(circuit: ProviderCircuit, state: str, reason: str) -> None:
    before = {"state": circuit.state, "consecutive_failures": circuit.consecutive_failures}
    circuit.state = state
    audit.record(
        f"platform.integration.circuit_{state}",
        object_type="recovery.integration",
        object_id=circuit.integration_id,
        before=before,
        after={"state": state, "consecutive_failures": circuit.consecutive_failures},
        actor=ACTOR,
        reason=reason,
    )


def circuit_record(*, integration_id: int, succeeded: bool, retryable_failure: bool) -> None:
    """Called in the transaction that records each delivery outcome."""
    if succeeded:
        # The common case costs one read: a closed circuit with no failures stays as it is.
        circuit = (
            ProviderCircuit.objects.select_for_update()
            .filter(integration_id=integration_id)
            .exclude(state=ProviderCircuit.State.CLOSED, consecutive_failures=0)
            .first()
        )
        if circuit is None:
            return
    else:
        circuit, _ = ProviderCircuit.objects.select_for_update().get_or_create(
            integration_id=integration_id
        )
    now = timezone.now()
    if succeeded:
        circuit.consecutive_failures = 0
        if circuit.state == ProviderCircuit.State.OPEN:
            _transition(circuit, ProviderCircuit.State.DRAINING, "a probe delivery succeeded")
        elif circuit.state == ProviderCircuit.State.DRAINING and not _backlog(integration_id):
            _transition(circuit, ProviderCircuit.State.CLOSED, "backlog drained")
    elif retryable_failure:
        circuit.consecutive_failures += 1
        if circuit.state == ProviderCircuit.State.OPEN:
            circuit.next_probe_at = now + timedelta(seconds=settings.CIRCUIT_PROBE_SECONDS)
        elif circuit.consecutive_failures >= settings.CIRCUIT_FAILURE_THRESHOLD:
            circuit.opened_at = now
            circuit.next_probe_at = now + timedelta(seconds=settings.CIRCUIT_PROBE_SECONDS)
            _transition(
                circuit,
                ProviderCircuit.State.OPEN,
                f"{circuit.consecutive_failures} retryable failures in a row",
            )
    circuit.save()


def _backlog(integration_id: int) -> bool:
    return RecoveryItem.objects.filter(
        integration_id=integration_id, status__in=RecoveryItem.DELIVERABLE
    ).exists()


def blocked_integrations() -> Q:
    """Integrations whose circuit is not closed: the normal claim leaves them out."""
    return Q(
        integration__circuit__state__in=[ProviderCircuit.State.OPEN, ProviderCircuit.State.DRAINING]
    )


def integrations_with_circuit_state(integration_ids: set[int]) -> set[int]:
    """Those of the integrations whose circuit is not closed-and-clean."""
    return set(
        ProviderCircuit.objects.filter(integration_id__in=integration_ids)
        .exclude(state=ProviderCircuit.State.CLOSED, consecutive_failures=0)
        .values_list("integration_id", flat=True)
    )


def probe_and_drain_quota() -> dict[int, int]:
    """How many items each non-closed integration may deliver in this run."""
    now = timezone.now()
    quota: dict[int, int] = {}
    with transaction.atomic():
        circuits = ProviderCircuit.objects.select_for_update(skip_locked=True).exclude(
            state=ProviderCircuit.State.CLOSED
        )
        for circuit in circuits:
            if circuit.state == ProviderCircuit.State.DRAINING:
                quota[circuit.integration_id] = settings.CIRCUIT_DRAIN_PER_RUN
            elif circuit.next_probe_at is None or circuit.next_probe_at <= now:
                quota[circuit.integration_id] = 1
                # The probe slot is taken: a parallel worker must not probe too.
                circuit.next_probe_at = now + timedelta(seconds=settings.CIRCUIT_PROBE_SECONDS)
                circuit.save(update_fields=["next_probe_at", "updated_at"])
    return quota


def circuits_health() -> ComponentHealth:
    tripped = list(
        ProviderCircuit.objects.exclude(state=ProviderCircuit.State.CLOSED)
        .select_related("integration")
        .values_list("integration__name", "state")
    )
    if not tripped:
        return ComponentHealth("ready", {"open": []})
    return ComponentHealth(
        "degraded", {"open": [{"integration": n, "state": s} for n, s in tripped]}
    )


def circuit_state(integration: Integration) -> str:
    circuit = ProviderCircuit.objects.filter(integration=integration).first()
    return circuit.state if circuit else ProviderCircuit.State.CLOSED
