"""What the alerts of docs/runbooks/incident-response.md read, on /metrics: readiness per
component (gauges) and account lockouts (a counter). deploy/prometheus/alerts.yml holds the
rules, deploy/prometheus/alerts_test.yml their unit tests (promtool test rules)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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
    """Every account lockout since the failure log began (django-axes keeps one row per
    failed login; those that locked an account are marked), as a counter: a rate or an
    increase over any window is Prometheus' to take."""
    from axes.models import AccessFailureLog

    lockouts = CounterMetricFamily(
        "opsconsole_auth_lockouts", "Account lockouts recorded (failed logins that locked one)"
    )
    lockouts.add_metric([], AccessFailureLog.objects.filter(locked_out=True).count())
    yield lockouts
