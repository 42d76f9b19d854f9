"""Batch workers: claim with a lease, heartbeat, kill switch, run_once(triggered_by=...).

A worker's run claims due rows (FOR UPDATE SKIP LOCKED on PostgreSQL), commits the lease,
then does each outside call with no transaction open. A worker that dies leaves its rows
leased; the lease expires and another run claims them again.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar

import structlog
from django.conf import settings
from django.db import connection, connections, models, transaction
from django.db.models import F
from django.utils import timezone

from opsconsole.incidents.records import failed_action_capture
from opsconsole.models import WorkerStatus
from opsconsole.monitoring.health import register_component
from opsconsole.monitoring.tracing import internal_span, mark_span_failed, span_traceparent
from opsconsole.workers import wakes
from opsconsole.workers.claims import RunContext, RunSummary, new_lease_owner
from opsconsole.workers.health import worker_health
from opsconsole.workers.listeners import listener_health
from opsconsole.workers.outcome_rollups import worker_outcomes_add
from opsconsole.workers.registry import registered_workers, worker_add
from opsconsole.workers.run_upkeep import RunUpkeep
from opsconsole.workers.switches import worker_enabled

logger = structlog.get_logger(__name__)


# A draining run notices a flipped kill switch within SWITCH_RECHECK_SECONDS and shows it is
# alive every HEARTBEAT_SECONDS (well inside WORKER_STALE_AFTER_SECONDS): see run_upkeep.py.


# The database's clock and this process's may disagree by this much; a lease is treated as
# running out this much earlier than it does.
LEASE_CLOCK_SLACK_SECONDS = 2


class BatchWorker:
    """Subclasses name themselves, declare their Outcome enum and implement claim() and
    process(). Everything about a run travels in its RunContext, so one instance serves all
    the processors of a run."""

    name: ClassVar[str]
    # What process() can report for an item; the run summary counts these.
    Outcome: ClassVar[type[StrEnum]]
    description: ClassVar[str] = ""
    # How often its schedule runs it (through `run`, the one entry point of every worker).
    schedule_minutes: ClassVar[int] = 1
    # A scheduled run drains (claims batch after batch for WORKER_DRAIN_SECONDS) rather than
    # taking one batch, and draws its processors from the setting named here ("" for one).
    drains: ClassVar[bool] = False
    concurrency_setting: ClassVar[str] = ""
    # Whether it runs as an always-running process woken as work is committed
    # (`run_worker NAME --listen`, opsconsole.workers.listeners), its drain waiting for wakes.
    listens: ClassVar[bool] = False
    # Workers whose items call out name the leased model, so a batch's leases can be renewed
    # before they could run out under the work (see `item_seconds`).
    lease_model: ClassVar[type[models.Model] | None] = None
    # Which outcomes are a success, a retry, a failure or a dead letter (outcome_rollups):
    # the overview charts a worker's queue from these. Others (nothing due) are not charted.
    outcome_classes: ClassVar[dict[str, str]] = {}

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

    @classmethod
    def as_scheduled(cls) -> BatchWorker:
        """The worker as its schedule runs it: its processors from its setting."""
        setting = cls.concurrency_setting
        return cls(concurrency=int(getattr(settings, setting)) if setting else 1)

    @classmethod
    def scheduled_drain_seconds(cls) -> float:
        return float(settings.WORKER_DRAIN_SECONDS) if cls.drains else 0.0

    def claim(self, run: RunContext, *, limit: int) -> Sequence[Hashable]:
        """Lease up to `limit` items to `run.owner`; return their ids (row ids, or any
        hashable key) for process()."""
        raise NotImplementedError

    def process(self, item_id: Any, run: RunContext) -> StrEnum | str:
        """Handle one claimed row; return its outcome (a member, or value, of Outcome)."""
        raise NotImplementedError

    def run_context(self, *, triggered_by: str, seconds: float = 0.0) -> RunContext:
        """A processor's context: a fresh lease owner, a run that ends `seconds` from now."""
        return RunContext(
            worker=self.name,
            owner=new_lease_owner(self.name),
            triggered_by=triggered_by,
            deadline=time.monotonic() + seconds,
        )

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
        self.lease_model._default_manager.filter(pk__in=list(ids), lease_owner=owner).update(
            lease_expires_at=timezone.now() + timedelta(seconds=self.lease_seconds)
        )
        return renewed_at + self.lease_seconds - LEASE_CLOCK_SLACK_SECONDS

    def release_after_error(self, item_id: Any, run: RunContext, exc: Exception) -> None:
        """A row that raised is pushed back by its lease, so it cannot crash-loop the worker."""

    def still_failing(self) -> str:
        """What of its work is still failing after a run that raised nothing (a scheduled
        change that keeps being refused), in the operator's words; "" when nothing is. Such
        a run counts as failed, so `consecutive_failures` keeps rising for the alert until
        an operator acts, and its last error says what to fix."""
        return ""

    def begin_run(self, run: RunContext) -> None:
        """Called once at the start of each run, before the first claim, with the run's
        first processor's context (set its quotas here)."""

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
            run = self.run_context(triggered_by=triggered_by, seconds=drain_seconds)
            self.begin_run(run)
            threads = [
                HelperProcessor(
                    self,
                    self.run_context(triggered_by=triggered_by, seconds=drain_seconds),
                    batch_limit=batch_limit,
                )
                for _ in range(helpers)
            ]
            for thread in threads:
                thread.start()
            try:
                crashed = self.drain(summary, run, batch_limit=batch_limit, heartbeat=True)
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
                if crashed is not None:
                    mark_span_failed(span, crashed)
        self._record_run(triggered_by=triggered_by, summary=summary, crashed=crashed)
        if crashed is not None:
            # The alerts read these lines for the schedulers too, with the trace id.
            fields = {
                "worker": self.name,
                "triggered_by": triggered_by,
                "error": f"{type(crashed).__name__}: {crashed}"[:500],
                **({"traceparent": span_traceparent(span)} if span is not None else {}),
            }
            logger.error("server_action_failed", **fields)
            failed_action_capture(fields)  # kept with any open incident, for its postmortem
            raise crashed
        logger.info("worker_run_finished", **summary.as_dict())
        return summary

    def drain(
        self, summary: RunSummary, run: RunContext, *, batch_limit: int, heartbeat: bool
    ) -> Exception | None:
        """Claim and process batches under the run's lease owner until a stop condition."""
        upkeep = RunUpkeep(self.name, heartbeat=heartbeat)
        while True:
            claimed_before = summary.claimed
            crashed = self._run_batch(run, limit=batch_limit, summary=summary)
            if summary.claimed > claimed_before:
                summary.batches += 1
            now = time.monotonic()
            if (
                crashed is not None
                or summary.claimed - claimed_before < batch_limit
                or now >= run.deadline
            ):
                return crashed
            if not upkeep.still_enabled():
                logger.info("worker_run_stopped", worker=self.name, reason="disabled")
                return None

    def _run_batch(self, run: RunContext, *, limit: int, summary: RunSummary) -> Exception | None:
        crashed: Exception | None = None
        try:
            claimed_at = time.monotonic()
            ids = self.claim(run, limit=limit)
            summary.claimed += len(ids)
            leased_until = claimed_at + self.lease_seconds - LEASE_CLOCK_SLACK_SECONDS
            for index, item_id in enumerate(ids):
                leased_until = self._renew_if_short(
                    ids[index:], owner=run.owner, leased_until=leased_until
                )
                try:
                    summary.outcomes[self.Outcome(self.process(item_id, run))] += 1
                except Exception as exc:
                    summary.errors += 1
                    logger.exception("worker_item_failed", worker=self.name, item_id=item_id)
                    self.release_after_error(item_id, run, exc)
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
        still_failing = "" if crashed is not None or summary.errors else self.still_failing()
        failed = crashed is not None or summary.errors > 0 or bool(still_failing)
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
                last_error=(
                    repr(crashed)
                    if crashed
                    else f"{summary.errors} item errors"
                    if summary.errors
                    else still_failing
                )
                if failed
                else "",
                runs_total=F("runs_total") + 1,
                items_processed_total=F("items_processed_total") + summary.claimed,
            )
            if self.outcome_classes:
                by_class: Counter[str] = Counter()
                for outcome, count in summary.outcomes.items():
                    if name := self.outcome_classes.get(str(outcome)):
                        by_class[name] += count
                worker_outcomes_add(self.name, by_class, now)


class HelperProcessor(threading.Thread):
    """A second (third, ...) processor of a draining run, on its own database connection."""

    def __init__(self, worker: BatchWorker, run: RunContext, *, batch_limit: int) -> None:
        super().__init__(name=f"{worker.name}-helper", daemon=True)
        self.worker = worker
        self.run_context = run
        self.batch_limit = batch_limit
        self.summary = RunSummary(worker=worker.name, triggered_by=run.triggered_by)
        self.crashed: Exception | None = None
        # The run's request id and trace travel with the work into the thread.
        self.context = contextvars.copy_context()

    def run(self) -> None:
        try:
            self.crashed = self.context.run(
                self.worker.drain,
                self.summary,
                self.run_context,
                batch_limit=self.batch_limit,
                heartbeat=False,
            )
        except Exception as exc:  # drain catches per batch; this is the connection failing
            self.crashed = exc
        finally:
            connections.close_all()


class PeriodicWorker(BatchWorker):
    """A run that is one step (a sample, a snapshot), not rows to lease: the engine's kill
    switch, run records, heartbeat and metrics, with one item per run when `is_due`."""

    def is_due(self) -> bool:
        return True

    def run_step(self, run: RunContext) -> StrEnum | str:
        raise NotImplementedError

    def claim(self, run: RunContext, *, limit: int) -> list[str]:
        return [self.name] if self.is_due() else []

    def process(self, item_id: str, run: RunContext) -> StrEnum | str:
        return self.run_step(run)


def register_worker(worker_class: type[BatchWorker]) -> type[BatchWorker]:
    worker_add(worker_class)
    register_component(
        worker_class.name,
        lambda: worker_health(worker_class.name, schedule_minutes=worker_class.schedule_minutes),
    )
    if worker_class.listens:
        register_component(
            f"{worker_class.name}_listener", lambda: listener_health(worker_class.name)
        )
    return worker_class


# The django-q2 task of every worker: schedules, wake-ups and "Run now" queue it with the
# worker's name.
RUN_TASK = wakes.RUN_TASK


class UnknownWorker(LookupError):
    pass


def run(
    name: str,
    triggered_by: str = "schedule",
    *,
    limit: int | None = None,
    drain_seconds: float | None = None,
) -> dict[str, Any]:
    """Run the worker registered as `name` as its schedule does (its drain time and its
    processors); `manage.py run_worker` may narrow the batch or the drain."""
    worker_class = registered_workers().get(name)
    if worker_class is None:
        raise UnknownWorker(name)
    drain = worker_class.scheduled_drain_seconds() if drain_seconds is None else drain_seconds
    worker = worker_class.as_scheduled()
    return worker.run_once(triggered_by=triggered_by, limit=limit, drain_seconds=drain).as_dict()
