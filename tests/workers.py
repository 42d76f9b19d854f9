"""The one way tests run a worker: build it, run it once, return its run summary."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import time_machine

from opsconsole.workers import BatchWorker
from opsconsole.workers.claims import RunContext, RunSummary


def run_worker(
    worker_class: type[BatchWorker],
    *,
    triggered_by: str = "test",
    at: datetime | None = None,
    **options: Any,
) -> RunSummary:
    """Run `worker_class(**options)` once, at `at` when given (the clock travels there)."""
    worker = worker_class(**options)
    if at is None:
        return worker.run_once(triggered_by=triggered_by)
    with time_machine.travel(at):
        return worker.run_once(triggered_by=triggered_by)


def deliver(timeout: float = 2.0) -> RunSummary:
    """One run of the integration delivery worker as production runs it (its calls in flight
    on the delivery loop), with a short HTTP timeout for the stand-in endpoints."""
    from django.test import override_settings

    from recovery.workers import IntegrationDeliveryWorker

    with override_settings(INTEGRATION_HTTP_TIMEOUT_SECONDS=timeout):
        return run_worker(IntegrationDeliveryWorker)


def run_as(worker: BatchWorker, owner: str, *, triggered_by: str = "test") -> RunContext:
    """A run context for calling claim() or process() by hand, under a chosen lease owner."""
    return dataclasses.replace(worker.run_context(triggered_by=triggered_by), owner=owner)


def claimed_ids(worker: Any, owner: str, *, limit: int) -> list[int]:
    """The ids of the deliveries `worker` (the integration delivery worker) leases to
    `owner` in one claim."""
    return [claim.item.pk for claim in worker.claim(run_as(worker, owner), limit=limit)]


def run_queued_tasks(func: str | None = None) -> list[Any]:
    """Run the tasks waiting in the ORM broker, as a django-q2 cluster would, and remove
    them; `func` keeps to one entry point, or to the wakes of one worker by its name.
    Returns each task's result in queue order."""
    from django.utils.module_loading import import_string
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    results = []
    for row in OrmQ.objects.order_by("id"):
        task = SignedPackage.loads(row.payload)
        if func is not None and task["func"] != func and func not in task["args"][:1]:
            continue
        row.delete()
        results.append(import_string(task["func"])(*task["args"], **task["kwargs"]))
    return results
