"""Batch workers: claim with a lease, heartbeat, kill switch, run_once(triggered_by=...).

A worker's run claims due rows (FOR UPDATE SKIP LOCKED on PostgreSQL), commits the lease,
then does each outside call with no transaction open. A worker that dies leaves its rows
leased; the lease expires and another run claims them again.
"""

from __future__ import annotations

import contextvars
import copy
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import structlog
from django.conf import settings
from django.db import connection, connections, models, transaction
from django.db.models import F
from django.utils import timezone

from opsconsole.health import register_component
from opsconsole.models import WorkerStatus
from opsconsole.tracing import internal_span
from opsconsole.worker_health import worker_health
from opsconsole.worker_switches import worker_enabled

logger = structlog.get_logger(__name__)


# A draining run notices a flipped kill switch within this many seconds...
SWITCH_RECHECK_SECONDS = 1.0


# ...and shows it is alive this often (well inside WORKER_STALE_AFTER_SECONDS).
HEARTBEAT_SECONDS = 10.0


def new_lease_owner(worker_name: str) -> str:
    return f"{worker_name}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class RunSummary:
    worker: str
    triggered_by: str
    skipped: bool = False
    claimed: int = 0
    batches: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    def merge(self, other: RunSummary) -> None:
        self.claimed += other.claimed
        self.batches += other.batches
        self.outcomes.update(other.outcomes)
        self.errors += other.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "triggered_by": self.triggered_by,
            "skipped": self.skipped,
            "claimed": self.claimed,
            "batches": self.batches,
            "outcomes": dict(self.outcomes),
            "errors": self.errors,
        }


# The database's clock and this process's may disagree by this much; a lease is treated as
# running out this much earlier than it does.
LEASE_CLOCK_SLACK_SECONDS = 2


class BatchWorker:
    """Subclasses name themselves and implement claim() and process()."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # Dotted path of the django-q2 task that wakes this worker, and how often.
    schedule_task: ClassVar[str] = ""
    schedule_minutes: ClassVar[int] = 1
    # Workers whose items call out name the leased model, so a batch's leases can be renewed
    # before they could run out under the work (see `item_seconds`).
    lease_model: ClassVar[type[models.Model] | None] = None

    def __init__(
        self,
        *,
        batch_size: int | None = None,
        lease_seconds: int | None = None,
        concurrency: int = 1,
    ) -> None:
        self.batch_size = batch_size or settings.WORKER_BATCH_SIZE
        self.configured_lease_seconds = lease_seconds or settings.WORKER_LEASE_SECONDS
        # Processors in a draining run. Each has at most one outside call in flight, so a
        # SIGKILL repeats at most this many calls (each with its idempotency key).
        self.concurrency = max(1, concurrency)
        # Who started the current run (schedule, manual, ...), for process() to record.
        self.triggered_by = ""

    def claim(self, *, owner: str, limit: int) -> Sequence[Hashable]:
        """Lease up to `limit` items; return their ids (row ids, or any hashable key)."""
        raise NotImplementedError

    def process(self, item_id: Any, *, owner: str) -> str:
        """Handle one claimed row; return an outcome label for the run summary."""
        raise NotImplementedError

    @property
    def lease_seconds(self) -> int:
        """The configured lease, raised so a fresh one covers one item's worst case (read
        when used: a subclass sets its adapter, and so its timeout, after this __init__).
        The batch renews it before each item that could outlast it."""
        budget = self.item_seconds()
        floor = int(budget) + LEASE_CLOCK_SLACK_SECONDS + 1 if budget else 0
        return max(self.configured_lease_seconds, floor)

    def item_seconds(self) -> float:
        """The longest one item can take (its outside call's timeout plus writing the
        outcome); 0 for workers that do not call out. The lease is renewed before it could
        run out under the next item."""
        return 0.0

    def _renew_if_short(self, ids: Sequence[Any], *, owner: str, leased_until: float) -> float:
        """Renew the leases of the batch's remaining items when the next item could outlast
        them; returns when they now run out (monotonic). Only rows still leased to `owner`
        are renewed: a lease already lost stays lost (the compare-and-set refuses it)."""
        budget = self.item_seconds()
        if not budget or self.lease_model is None or not ids:
            return leased_until
        if time.monotonic() + budget <= leased_until:
            return leased_until
        renewed_at = time.monotonic()
        self.lease_model.objects.filter(pk__in=list(ids), lease_owner=owner).update(
            lease_expires_at=timezone.now() + timedelta(seconds=self.lease_seconds)
        )
        return renewed_at + self.lease_seconds - LEASE_CLOCK_SLACK_SECONDS

    def release_after_error(self, item_id: Any, *, owner: str, exc: Exception) -> None:
        """A row that raised is pushed back by its lease, so it cannot crash-loop the worker."""

    def begin_run(self) -> None:
        """Called once at the start of each run, before the first claim."""

    def run_once(
        self, *, triggered_by: str, limit: int | None = None, drain_seconds: float = 0.0
    ) -> RunSummary:
        """Claim one batch and process it; with `drain_seconds`, keep claiming full batches
        until the queue runs dry or that much time has passed (what a scheduled run does).

        A drained run writes its start and end once, rechecks the kill switch at most every
        SWITCH_RECHECK_SECONDS and heartbeats every HEARTBEAT_SECONDS, so the bookkeeping
        does not grow with the number of batches. With `concurrency` above 1 (PostgreSQL
        only), that many processors drain side by side, each claiming its own batches.
        """
        summary = RunSummary(worker=self.name, triggered_by=triggered_by)
        self.triggered_by = triggered_by
        if not worker_enabled(self.name):
            summary.skipped = True
            self._record_heartbeat(triggered_by=triggered_by, summary=summary)
            logger.info("worker_run_skipped", worker=self.name, reason="disabled")
            return summary

        started_at = timezone.now()
        WorkerStatus.objects.update_or_create(
            name=self.name,
            defaults={"last_run_started_at": started_at, "last_heartbeat_at": started_at},
        )
        batch_limit = limit or self.batch_size
        helpers = self.concurrency - 1 if drain_seconds and connection.vendor == "postgresql" else 0
        with internal_span(f"worker {self.name}", triggered_by=triggered_by) as span:
            self.begin_run()
            threads = [
                HelperProcessor(self.helper(), batch_limit=batch_limit, drain_seconds=drain_seconds)
                for _ in range(helpers)
            ]
            for thread in threads:
                thread.start()
            try:
                crashed = self.drain(
                    summary, batch_limit=batch_limit, drain_seconds=drain_seconds, heartbeat=True
                )
            finally:
                # However this processor ended, the run ends when its helpers have.
                for thread in threads:
                    thread.join()
            for thread in threads:
                summary.merge(thread.summary)
                crashed = crashed or thread.crashed
            if span is not None:
                span.set_attribute("worker.claimed", summary.claimed)
                span.set_attribute("worker.errors", summary.errors)
        self._record_run(triggered_by=triggered_by, summary=summary, crashed=crashed)
        if crashed is not None:
            raise crashed
        logger.info("worker_run_finished", **summary.as_dict())
        return summary

    def helper(self) -> BatchWorker:
        """Another processor for the same run: the same configuration, its own claim state."""
        clone = copy.copy(self)
        clone.reset_claim_state()
        return clone

    def reset_claim_state(self) -> None:
        """Forget whatever the last claim remembered (a helper starts with nothing)."""

    def drain(
        self, summary: RunSummary, *, batch_limit: int, drain_seconds: float, heartbeat: bool
    ) -> Exception | None:
        """Claim and process batches under one lease owner until a stop condition."""
        owner = new_lease_owner(self.name)
        started = last_switch_check = last_heartbeat = time.monotonic()
        while True:
            claimed_before = summary.claimed
            crashed = self._run_batch(owner=owner, limit=batch_limit, summary=summary)
            if summary.claimed > claimed_before:
                summary.batches += 1
            now = time.monotonic()
            if (
                crashed is not None
                or summary.claimed - claimed_before < batch_limit
                or now - started >= drain_seconds
            ):
                return crashed
            if now - last_switch_check >= SWITCH_RECHECK_SECONDS:
                last_switch_check = now
                if not worker_enabled(self.name):
                    logger.info("worker_run_stopped", worker=self.name, reason="disabled")
                    return None
            if heartbeat and now - last_heartbeat >= HEARTBEAT_SECONDS:
                last_heartbeat = now
                WorkerStatus.objects.filter(name=self.name).update(last_heartbeat_at=timezone.now())

    def _run_batch(self, *, owner: str, limit: int, summary: RunSummary) -> Exception | None:
        crashed: Exception | None = None
        try:
            claimed_at = time.monotonic()
            ids = self.claim(owner=owner, limit=limit)
            summary.claimed += len(ids)
            leased_until = claimed_at + self.lease_seconds - LEASE_CLOCK_SLACK_SECONDS
            for index, item_id in enumerate(ids):
                leased_until = self._renew_if_short(
                    ids[index:], owner=owner, leased_until=leased_until
                )
                try:
                    summary.outcomes[self.process(item_id, owner=owner)] += 1
                except Exception as exc:
                    summary.errors += 1
                    logger.exception("worker_item_failed", worker=self.name, item_id=item_id)
                    self.release_after_error(item_id, owner=owner, exc=exc)
        except Exception as exc:
            crashed = exc
            logger.exception("worker_run_failed", worker=self.name)
        return crashed

    def _record_heartbeat(self, *, triggered_by: str, summary: RunSummary) -> None:
        now = timezone.now()
        WorkerStatus.objects.update_or_create(
            name=self.name,
            defaults={
                "last_heartbeat_at": now,
                "last_triggered_by": triggered_by,
                "last_run_summary": summary.as_dict(),
            },
        )

    def _record_run(
        self, *, triggered_by: str, summary: RunSummary, crashed: Exception | None
    ) -> None:
        now = timezone.now()
        failed = crashed is not None or summary.errors > 0
        # The row exists: run_once wrote the start of this run. Outcome totals are a JSON
        # counter, so the row lock keeps concurrent runs' sums right; one UPDATE writes all.
        with transaction.atomic():
            row = WorkerStatus.objects.select_for_update().get(name=self.name)
            totals = Counter(row.outcome_totals or {})
            totals.update(summary.outcomes)
            if failed:
                totals["errors"] += summary.errors + (1 if crashed else 0)
            WorkerStatus.objects.filter(name=self.name).update(
                outcome_totals=dict(totals),
                last_heartbeat_at=now,
                last_run_finished_at=now,
                last_triggered_by=triggered_by,
                last_run_summary=summary.as_dict(),
                consecutive_failures=(F("consecutive_failures") + 1) if failed else 0,
                last_error=(repr(crashed) if crashed else f"{summary.errors} item errors")
                if failed
                else "",
                runs_total=F("runs_total") + 1,
                items_processed_total=F("items_processed_total") + summary.claimed,
            )


class HelperProcessor(threading.Thread):
    """A second (third, ...) processor of a draining run, on its own database connection."""

    def __init__(self, worker: BatchWorker, *, batch_limit: int, drain_seconds: float) -> None:
        super().__init__(name=f"{worker.name}-helper", daemon=True)
        self.worker = worker
        self.batch_limit = batch_limit
        self.drain_seconds = drain_seconds
        self.summary = RunSummary(worker=worker.name, triggered_by=worker.triggered_by)
        self.crashed: Exception | None = None
        # The run's request id and trace travel with the work into the thread.
        self.context = contextvars.copy_context()

    def run(self) -> None:
        try:
            self.crashed = self.context.run(
                self.worker.drain,
                self.summary,
                batch_limit=self.batch_limit,
                drain_seconds=self.drain_seconds,
                heartbeat=False,
            )
        except Exception as exc:  # drain catches per batch; this is the connection failing
            self.crashed = exc
        finally:
            connections.close_all()


_workers: dict[str, type[BatchWorker]] = {}


def register_worker(worker_class: type[BatchWorker]) -> type[BatchWorker]:
    _workers[worker_class.name] = worker_class
    register_component(worker_class.name, lambda: worker_health(worker_class.name))
    return worker_class


def registered_workers() -> dict[str, type[BatchWorker]]:
    return dict(_workers)
