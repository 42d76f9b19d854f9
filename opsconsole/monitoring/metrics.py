"""Prometheus exposition at /metrics.

Worker and queue figures are read from the database at scrape time, so the numbers agree
across every gunicorn and qcluster process without a multiprocess registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog
from django.db.models import Model
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = structlog.get_logger(__name__)

MetricSource = Callable[[], Iterable[Metric]]
_sources: dict[str, MetricSource] = {}


def register_metric_source(name: str, source: MetricSource) -> None:
    _sources[name] = source


class DatabaseBackedCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "opsconsole_metrics_source_up",
            "1 when a metric source could be read",
            labels=["source"],
        )
        for name, source in _sources.items():
            try:
                yield from list(source())
                up.add_metric([name], 1)
            except Exception as exc:  # a down database must not break the scrape
                logger.warning("metrics_source_failed", source=name, error=str(exc))
                up.add_metric([name], 0)
        yield up


@dataclass(frozen=True)
class Queue:
    model: type[Model]
    # Statuses that need a human or a retry; the overview shows the oldest such row.
    stuck_statuses: tuple[str, ...] = ()
    # Of those, the dead-lettered ones (attempts exhausted): the overview's DLQ counter.
    dead_statuses: tuple[str, ...] = ()
    age_field: str = "created_at"
    # Broken down by this field (e.g. the integration's name) for these statuses, in each
    # minute's sample, so /metrics reports the breakdown without counting the table.
    group_by: str = ""
    group_statuses: tuple[str, ...] = ()


_queues: dict[str, Queue] = {}


def register_queue(
    name: str,
    model: type[Model],
    *,
    stuck: tuple[str, ...] = (),
    dead: tuple[str, ...] = (),
    age_field: str = "created_at",
    group_by: str = "",
    group_statuses: tuple[str, ...] = (),
) -> None:
    """A table with a `status` column: its depth per status goes to /metrics and the overview."""
    _queues[name] = Queue(
        model=model,
        stuck_statuses=stuck,
        dead_statuses=dead,
        age_field=age_field,
        group_by=group_by,
        group_statuses=group_statuses,
    )


def registered_queues() -> dict[str, Queue]:
    return dict(sorted(_queues.items()))


registry = CollectorRegistry(auto_describe=False)
registry.register(DatabaseBackedCollector())


def render() -> bytes:
    return generate_latest(registry)
