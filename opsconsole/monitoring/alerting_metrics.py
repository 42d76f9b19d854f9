"""The gauges the alerts of docs/runbooks/incident-response.md read, on /metrics: readiness per
component and lockouts in the last minute. deploy/prometheus/alerts.yml holds the rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from opsconsole.monitoring.health import readiness

READINESS_LEVELS = {"ready": 0, "degraded": 1, "error": 2}


def readiness_metrics() -> Iterable[Metric]:
    """0 ready, 1 degraded, 2 error, for the whole and per component (readyz's own words)."""
    report = readiness()
    overall = GaugeMetricFamily(
        "opsconsole_readiness", "readyz status: 0 ready, 1 degraded, 2 error"
    )
    overall.add_metric([], READINESS_LEVELS.get(report["status"], 2))
    components = GaugeMetricFamily(
        "opsconsole_readiness_component",
        "readyz status per component: 0 ready, 1 degraded, 2 error",
        labels=["component"],
    )
    for name, component in report["components"].items():
        components.add_metric([name], READINESS_LEVELS.get(component["status"], 2))
    yield overall
    yield components


def lockout_metrics() -> Iterable[Metric]:
    from axes.models import AccessFailureLog

    lockouts = GaugeMetricFamily(
        "opsconsole_auth_lockouts_last_minute", "Accounts locked out in the last minute"
    )
    lockouts.add_metric(
        [],
        AccessFailureLog.objects.filter(
            locked_out=True, attempt_time__gte=timezone.now() - timedelta(minutes=1)
        ).count(),
    )
    yield lockouts
