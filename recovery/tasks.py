"""Earlier django-q2 entry points of the recovery workers. Every worker now runs through
`opsconsole.workers.run(name, triggered_by)`; these names stay because tasks queued before
the change still carry them, and each runs exactly what `run` runs."""

from __future__ import annotations

from typing import Any

from opsconsole.workers import run


def run_integration_delivery_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("integration_delivery_worker", triggered_by)


def run_hosted_recovery_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("hosted_recovery_worker", triggered_by)


def run_failure_alerter(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("failure_alerter", triggered_by)


def run_dlq_sweeper(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("dlq_sweeper", triggered_by)


def run_bulk_action_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("bulk_action_worker", triggered_by)


def run_retention_redactor(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("retention_redactor", triggered_by)


def run_weekly_digest(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("weekly_digest_scheduler", triggered_by)
