"""Waking a worker now instead of at its next schedule tick.

A wake is a django-q2 task that runs the worker; the rows hold the state, so a lost wake only
delays work until the schedule runs. Code that causes many wakes in a row (a bulk replay of
ten thousand deliveries) batches them: inside `batched_wakes()` each worker is woken once per
flush, not once per row. Wakes of one worker from one process within WAKE_COALESCE_MS are
coalesced: the first is sent at once, the rest become one more wake at the end of the window,
so every wake asked for is followed by one sent no later than the window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog

logger = structlog.get_logger(__name__)

_pending: ContextVar[dict[str, str] | None] = ContextVar("pending_wakes", default=None)
_coalescing = threading.Lock()
_last_sent: dict[str, float] = {}  # worker -> when its last wake was sent (monotonic)
_trailing: set[str] = set()  # workers with a wake waiting for the end of their window
# Every worker's one entry point (opsconsole.workers.run), named here as the task queue
# names it (a string, not an import: the engine imports this module).
RUN_TASK = "opsconsole.workers.run"


def wake(worker: str, triggered_by: str) -> None:
    """Run the worker registered as `worker` soon (its one entry point, `RUN_TASK`), as
    `triggered_by` asked."""
    pending = _pending.get()
    if pending is not None:
        pending.setdefault(worker, triggered_by)
        return
    _send(worker, triggered_by)


def _send(worker: str, triggered_by: str) -> None:
    from django.conf import settings

    window = settings.WAKE_COALESCE_MS / 1000
    if window > 0:
        now = time.monotonic()
        with _coalescing:
            since = now - _last_sent.get(worker, float("-inf"))
            if since < window:
                if worker not in _trailing:
                    _trailing.add(worker)
                    timer = threading.Timer(window - since, _send_trailing, (worker, triggered_by))
                    timer.daemon = True
                    timer.start()
                return
            _last_sent[worker] = now
    _enqueue(worker, triggered_by)


def _send_trailing(worker: str, triggered_by: str) -> None:
    from django.db import connections

    with _coalescing:
        _trailing.discard(worker)
        _last_sent[worker] = time.monotonic()
    try:
        _enqueue(worker, triggered_by)
    finally:
        connections.close_all()  # this timer thread's own connection, if the broker used one


def _enqueue(worker: str, triggered_by: str) -> None:
    from django_q.tasks import async_task

    from opsconsole.workers.listeners import listening

    if listening(worker):
        return  # its listening processes were woken with the commit (listeners.announce)
    try:
        async_task(RUN_TASK, worker, triggered_by)
    except Exception:  # the row is the truth; a lost wake-up only delays the work
        logger.warning("worker_wake_failed", worker=worker, exc_info=True)


def run_after_commit(task: str, *args: object) -> None:
    """Hand `task(*args)` to the task queue once the current transaction commits (at once
    outside one): provider calls a web request need not wait for, such as the customer's
    messages after a regeneration, run there with the workers' full timeouts. A rolled-back
    change queues nothing."""
    from django.db import transaction
    from django_q.tasks import async_task

    from opsconsole.http.context import request_id_var, traceparent_var

    correlation = (request_id_var.get(), traceparent_var.get())

    def enqueue() -> None:
        try:
            async_task("opsconsole.workers.wakes.run_correlated", task, *correlation, *args)
        except Exception:
            logger.error("task_enqueue_failed", task=task, exc_info=True)

    transaction.on_commit(enqueue)


def run_correlated(task: str, request_id: str, traceparent: str, *args: object) -> object:
    """The queued side of `run_after_commit`: the task runs under the request's ids, so its
    audit rows and log lines join the request that caused it."""
    from django.utils.module_loading import import_string

    from opsconsole.http.context import bound_context

    with bound_context(request_id=request_id, traceparent=traceparent):
        return import_string(task)(*args)


class WakeBatch:
    def flush(self) -> None:
        """Send the wakes collected so far, each worker once."""
        pending = _pending.get()
        if not pending:
            return
        workers = dict(pending)
        pending.clear()
        for worker, triggered_by in workers.items():
            _send(worker, triggered_by)


@contextmanager
def batched_wakes() -> Iterator[WakeBatch]:
    """Collect wakes until `flush()` or the end of the block; each worker is woken once."""
    token = _pending.set({})
    batch = WakeBatch()
    try:
        yield batch
    finally:
        batch.flush()
        _pending.reset(token)
