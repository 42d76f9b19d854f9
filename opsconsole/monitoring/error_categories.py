"""The specification's error categories, and the severity each gives its alerts.

One table for every place that raises an alert or writes an alert rule: the console's own
alerts (`alert_raise(severity=severity_of(...))`) and `deploy/prometheus/alerts.yml`, whose
rules carry `category` and `severity` labels that tests/opsconsole/monitoring/
test_error_categories.py holds to this table. A category whose response is silent has no
alert rule at all: its failures are counted and logged at warning, and page no one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["critical", "high", "medium", "low"]


@dataclass(frozen=True)
class ErrorCategory:
    severity: Severity
    response: str
    # Pages or notifies someone; False: degrade gracefully or retry silently.
    alerts: bool


ERROR_CATEGORIES: dict[str, ErrorCategory] = {
    "payment_failure": ErrorCategory("critical", "page on-call, auto-retry", alerts=True),
    "booking_conflict": ErrorCategory("high", "auto-resolve, notify user", alerts=True),
    "notification_failure": ErrorCategory("medium", "auto-retry, batch alert", alerts=True),
    "ai_enhancement_failure": ErrorCategory(
        "low", "graceful degradation: the raw material with its fallbackReason", alerts=False
    ),
    "analytics_failure": ErrorCategory("low", "silent retry", alerts=False),
    # The console's outside services beyond the specification's table.
    "identity_provider_outage": ErrorCategory(
        "high", "cached sessions within IDP_FALLBACK_MINUTES; page on-call", alerts=True
    ),
    "break_glass_sign_in": ErrorCategory(
        "critical", "page on-call: confirm who used the break-glass account", alerts=True
    ),
    "worker_stalled": ErrorCategory("high", "page on-call, restart the worker", alerts=True),
    "readiness_degraded": ErrorCategory("medium", "notify on-call", alerts=True),
    "dependency_down": ErrorCategory("high", "page on-call", alerts=True),
    "security": ErrorCategory("high", "page on-call", alerts=True),
}


def severity_of(category: str) -> Severity:
    return ERROR_CATEGORIES[category].severity
