"""One integration delivery run, top to bottom: claim due items (a tripped circuit's probe
and drain quota first), start each one's signed call on the delivery loop
(recovery.integrations.delivery.pipeline), write each outcome as its call ends. The database
work stays on the processor's thread; the loop thread only makes the calls. With
INTEGRATION_DELIVERY_IN_FLIGHT at 1, this is the sequential worker: one call at a time.

In a listening process (`run_worker integration_delivery_worker --listen`) the drain does
not end when the queue runs dry: it waits for a wake (opsconsole.workers.listeners) or the
poll interval, and claims again, until the run's deadline."""

from __future__ import annotations

import queue
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import structlog
from django.conf import settings
from django.utils import timezone

from opsconsole.http.context import bound_context
from opsconsole.workers import LEASE_CLOCK_SLACK_SECONDS, BatchWorker
from opsconsole.workers.claims import RunContext, RunSummary
from opsconsole.workers.listeners import Waker, active_waker
from opsconsole.workers.run_upkeep import RunUpkeep
from recovery import services
from recovery.errors import LeaseLost
from recovery.integrations.delivery.pipeline import (
    DeliveryCall,
    DeliveryLoop,
    MadeCall,
    delivery_loop,
)
from recovery.integrations.delivery.request import DeliveryRequest

logger = structlog.get_logger(__name__)


class DeliveryOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a permanent refusal
    DLQ = "dlq"  # retries exhausted
    RETRY_SCHEDULED = "retry_scheduled"
    HELD_PAUSED = "held_paused"  # the integration was paused after the claim
    LEASE_LOST = "lease_lost"


def claim_deliveries(
    run: RunContext, *, limit: int, lease_seconds: int
) -> list[services.ClaimedDelivery]:
    """Lease up to `limit` due items to `run.owner`: first what the run's quotas allow of
    integrations whose circuit has tripped (`run.quotas`, spent across the run's batches),
    then items of integrations whose circuit is closed."""
    claimed: list[services.ClaimedDelivery] = []
    for integration_id, quota in list(run.quotas.items()):
        taken = services.recovery_items_claim_due(
            owner=run.owner,
            limit=min(quota, limit - len(claimed)),
            lease_seconds=lease_seconds,
            integration_id=integration_id,
        )
        run.quotas[integration_id] -= len(taken)
        claimed += taken
    run.quotas = {key: left for key, left in run.quotas.items() if left > 0}
    claimed += services.recovery_items_claim_due(
        owner=run.owner, limit=limit - len(claimed), lease_seconds=lease_seconds
    )
    return claimed


@dataclass
class _Started:
    claim: services.ClaimedDelivery
    request: DeliveryRequest
    started_at: datetime


class DeliveryDrain:
    """A delivery processor's drain with its calls on the delivery loop: claim while there
    is room in flight, write each outcome as its call ends, stop claiming at the run's
    deadline (or when the queue runs dry, or the worker is switched off), and never return
    before every call made has its outcome written."""

    def __init__(
        self, worker: BatchWorker, summary: RunSummary, run: RunContext, *, batch_limit: int
    ) -> None:
        self.worker = worker
        self.summary = summary
        self.run = run
        self.batch_limit = batch_limit
        # The processors of a run share the in-flight calls; each writes its own outcomes on
        # its own connection, so one's database round trip overlaps another's.
        self.in_flight = max(1, settings.INTEGRATION_DELIVERY_IN_FLIGHT // worker.concurrency)
        self.timeout = float(settings.INTEGRATION_HTTP_TIMEOUT_SECONDS)
        self.pending: dict[Future[MadeCall | None], _Started] = {}
        # Calls that ended and, in a listening process, wakes (WAKE): one queue, so a wake
        # reaches the drain at once while it waits for calls in flight.
        self.ended: queue.SimpleQueue[Future[MadeCall | None] | None] = queue.SimpleQueue()
        self.waker: Waker | None = active_waker(worker.name)
        # Integrations with a failure in this drain: their later successes write to the
        # circuit (resetting its streak). Never cleared within the drain: calls claimed when
        # the circuit was clean end after later failures.
        self.dirty: set[int] = set()
        # Per integration, when the latest-started call that succeeded left: a failure of a
        # call that left before it is not part of a run of failures.
        self.last_success_started: dict[int, float] = {}

    def drain(self, *, heartbeat: bool) -> Exception | None:
        loop = delivery_loop()
        crashed: Exception | None = None
        claiming, first, enabled = True, True, True
        looked_at = time.monotonic()  # the last claim: a listening drain claims again each poll
        upkeep = RunUpkeep(self.worker.name, heartbeat=heartbeat)
        waker = self.waker
        if waker is not None:
            waker.subscribe(self.ended)
        try:
            while True:
                room = self.in_flight - len(self.pending)
                if claiming and room > 0 and (first or time.monotonic() < self.run.deadline):
                    limit = min(room, self.batch_limit)
                    if first or not self.pending or room >= min(limit, self.in_flight // 4):
                        first = False
                        looked_at = time.monotonic()
                        claimed = self._claim_and_start(loop, limit)
                        claiming = claimed == limit and time.monotonic() < self.run.deadline
                listening = (
                    waker is not None
                    and enabled
                    and not waker.stopped.is_set()
                    and time.monotonic() < self.run.deadline
                )
                if not self.pending and not listening:
                    if not claiming or time.monotonic() >= self.run.deadline:
                        return None
                    continue
                if listening and waker is not None:
                    # Wait for a call to end, a wake, or the poll interval; a wake or the
                    # poll (retries falling due, with calls in flight or not) claims again.
                    since = time.monotonic() - looked_at
                    wait = 0.5 if self.pending else max(0.0, waker.poll_seconds - since)
                    wait = min(wait, max(0.0, self.run.deadline - time.monotonic()))
                    woken = self._finish_ended(timeout=wait)
                    if woken or time.monotonic() - looked_at >= waker.poll_seconds:
                        claiming = True
                else:
                    self._finish_ended(timeout=0.5)
                if not upkeep.still_enabled():
                    enabled = claiming = False  # finish what is in flight, claim nothing more
        except Exception as exc:
            crashed = exc
            logger.exception("worker_run_failed", worker=self.worker.name)
        finally:
            if waker is not None:
                waker.unsubscribe(self.ended)
            # Every call made gets its outcome written, crash or not.
            while self.pending:
                self._finish_ended(timeout=1.0)
        return crashed

    def _claim_and_start(self, loop: DeliveryLoop, limit: int) -> int:
        lease_seconds = self.worker.lease_seconds
        claims = claim_deliveries(self.run, limit=limit, lease_seconds=lease_seconds)
        self.summary.claimed += len(claims)
        if claims:
            self.summary.batches += 1
        lease_deadline = time.monotonic() + lease_seconds - LEASE_CLOCK_SLACK_SECONDS
        if self.waker is not None and claims:
            now = timezone.now()
            due = [c.item.next_retry_at for c in claims if c.item.next_retry_at is not None]
            if due:
                self.waker.note_lag((now - min(due)).total_seconds())
        calls: list[tuple[DeliveryCall, _Started]] = []
        for claim in claims:
            item = claim.item
            request = services.delivery_start(item, lease_owner=self.run.owner)
            if request is None:
                self._count(DeliveryOutcome.HELD_PAUSED)
                continue
            call = DeliveryCall(
                integration_id=item.integration_id,
                url=request.url,
                headers=request.headers,
                content=request.content,
                timeout_seconds=self.timeout,
                lease_deadline=lease_deadline,
                max_in_flight=item.integration.max_in_flight,
                rate_per_second=item.integration.rate_per_second,
            )
            calls.append((call, _Started(claim, request, timezone.now())))
        if calls:
            futures = loop.submit([call for call, _ in calls])
            for future, (_, started) in zip(futures, calls, strict=True):
                self.pending[future] = started
                future.add_done_callback(self.ended.put)
        return len(claims)

    def _finish_ended(self, *, timeout: float) -> bool:
        """Write the outcomes of the calls that have ended (waiting up to `timeout` for
        the first): they arrive on a queue, so each costs the same however many are in
        flight. True when a wake came with them."""
        try:
            ended = [self.ended.get(timeout=timeout)]
        except queue.Empty:
            return False
        while True:
            try:
                ended.append(self.ended.get_nowait())
            except queue.Empty:
                break
        woken = False
        for future in ended:
            if future is None:  # WAKE
                woken = True
                continue
            started = self.pending.pop(future)
            try:
                self._count(self._record(started, future.result()))
            except Exception as exc:
                self.summary.errors += 1
                item_id = started.claim.item.pk
                logger.exception("worker_item_failed", worker=self.worker.name, item_id=item_id)
                self.worker.release_after_error(item_id, self.run, exc)
        return woken

    def _record(self, started: _Started, made: MadeCall | None) -> str:
        item = started.claim.item
        if made is None:  # not called: its lease could not have covered the call
            services.recovery_item_release_lease(item_id=item.pk, lease_owner=self.run.owner)
            return DeliveryOutcome.LEASE_LOST
        integration_id = item.integration_id
        status = made.result.http_status
        if status is not None and 200 <= status < 300:
            latest = self.last_success_started.get(integration_id, made.started)
            self.last_success_started[integration_id] = max(latest, made.started)
        streak = made.started >= self.last_success_started.get(integration_id, made.started)
        dirty = self.dirty
        try:
            with bound_context(request_id=item.request_id, traceparent=item.traceparent):
                label = services.recovery_item_record_outcome(
                    item_id=item.pk,
                    lease_owner=self.run.owner,
                    request=started.request,
                    result=made.result,
                    started_at=started.started_at,
                    item=item,
                    circuit_clean=integration_id not in dirty and bool(started.claim.circuit_clean),
                    circuit_streak=streak,
                )
        except LeaseLost:
            return DeliveryOutcome.LEASE_LOST
        if label != DeliveryOutcome.SUCCEEDED:
            dirty.add(integration_id)
        return label

    def _count(self, label: str) -> None:
        self.summary.outcomes[DeliveryOutcome(label)] += 1
