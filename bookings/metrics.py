"""What the incident guide's dashboard reads beside the workers' own metrics
(deploy/grafana/incident-guide.json): fulfilments waiting, catalog changes not yet applied,
bundles by status, and nudges open and sent. Each count reads a partial index, so a scrape
costs the open rows, not the table."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from bookings.models import Bundle, CatalogChange, Fulfillment, Nudge


def _by(rows: QuerySet, *fields: str) -> list[tuple[list[str], int]]:
    counted = rows.values(*fields).annotate(n=Count("pk")).order_by(*fields)
    return [([str(row[f]) for f in fields], row["n"]) for row in counted]


def incident_guide_metrics() -> Iterable[Metric]:
    fulfilments = GaugeMetricFamily(
        "opsconsole_fulfillments_open",
        "Paid bookings' fulfilments not done: PENDING (due or retrying) and PARKED",
        labels=["status"],
    )
    for waiting in (Fulfillment.Status.PENDING, Fulfillment.Status.PARKED):
        fulfilments.add_metric([waiting], Fulfillment.objects.filter(status=waiting).count())
    changes = GaugeMetricFamily(
        "opsconsole_catalog_changes_open",
        "Scheduled catalog changes not applied yet, by status",
        labels=["status"],
    )
    open_changes = CatalogChange.objects.filter(status__in=CatalogChange.OPEN)
    counted = {labels[0]: n for labels, n in _by(open_changes, "status")}
    for change_status in CatalogChange.OPEN:
        changes.add_metric([change_status], counted.get(change_status, 0))
    bundles = GaugeMetricFamily(
        "opsconsole_bundles",
        "Bundles by status (STOPPED: the guardrail stopped them)",
        labels=["status"],
    )
    by_status = {labels[0]: n for labels, n in _by(Bundle.objects.all(), "status")}
    for bundle_status in Bundle.Status.values:
        bundles.add_metric([bundle_status], by_status.get(bundle_status, 0))
    open_nudges = GaugeMetricFamily(
        "opsconsole_nudges_open",
        "Nudges owed (PENDING) or parked after their retries, by kind",
        labels=["kind", "status"],
    )
    owed = {
        tuple(labels): n
        for labels, n in _by(
            Nudge.objects.filter(status__in=[Nudge.Status.PENDING, Nudge.Status.PARKED]),
            "kind",
            "status",
        )
    }
    sent = GaugeMetricFamily(
        "opsconsole_nudges_sent_last_day",
        "Nudges sent in the last 24 hours, by kind",
        labels=["kind"],
    )
    since = timezone.now() - timedelta(days=1)
    sent_by_kind = {
        labels[0]: n
        for labels, n in _by(
            Nudge.objects.filter(status=Nudge.Status.SENT, sent_at__gte=since), "kind"
        )
    }
    for kind in Nudge.Kind.values:
        for nudge_status in (Nudge.Status.PENDING, Nudge.Status.PARKED):
            open_nudges.add_metric([kind, nudge_status], owed.get((kind, nudge_status), 0))
        sent.add_metric([kind], sent_by_kind.get(kind, 0))
    return [fulfilments, changes, bundles, open_nudges, sent]
