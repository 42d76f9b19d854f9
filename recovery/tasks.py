"""django-q2 entry points: they only wake a worker; the rows hold the state."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from recovery.workers import (
    BulkActionWorker,
    DlqSweeper,
    FailureAlerter,
    HostedSessionRecoveryWorker,
    IntegrationDeliveryWorker,
    RetentionRedactor,
)


def run_integration_delivery_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    worker = IntegrationDeliveryWorker(concurrency=settings.INTEGRATION_DELIVERY_CONCURRENCY)
    return worker.run_once(
        triggered_by=triggered_by, drain_seconds=settings.WORKER_DRAIN_SECONDS
    ).as_dict()


def run_hosted_recovery_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    # Drains like the delivery worker: batches until the due sessions run out or the drain
    # time is spent, not one batch per five-minute tick.
    return (
        HostedSessionRecoveryWorker()
        .run_once(triggered_by=triggered_by, drain_seconds=settings.WORKER_DRAIN_SECONDS)
        .as_dict()
    )


def run_failure_alerter(triggered_by: str = "schedule") -> dict[str, Any]:
    return FailureAlerter().run_once(triggered_by=triggered_by).as_dict()


def run_dlq_sweeper(triggered_by: str = "schedule") -> dict[str, Any]:
    return DlqSweeper().run_once(triggered_by=triggered_by).as_dict()


def run_bulk_action_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return BulkActionWorker().run_once(triggered_by=triggered_by).as_dict()


def run_retention_redactor(triggered_by: str = "schedule") -> dict[str, Any]:
    return RetentionRedactor().run_once(triggered_by=triggered_by).as_dict()


def run_weekly_digest(triggered_by: str = "schedule") -> dict[str, Any]:
    from recovery.weekly_digest import WeeklyDigestWorker

    return WeeklyDigestWorker().run_once(triggered_by=triggered_by).as_dict()
