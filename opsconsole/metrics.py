"""Prometheus exposition at /metrics.

Worker and queue figures are read from the database at scrape time, so the numbers agree
across every gunicorn and qcluster process without a multiprocess registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog
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


registry = CollectorRegistry(auto_describe=False)
registry.register(DatabaseBackedCollector())


def render() -> bytes:
    return generate_latest(registry)
