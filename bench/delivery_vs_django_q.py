"""The integration delivery worker against one django-q2 task per item, the design it replaces.

Both sides deliver the same number of pending items to the same no-op local endpoint through
the same service (claim with a lease, call, compare-and-set outcome, attempt and audit rows),
with 2 processes each: the worker as the schedule runs it, and a django-q2 cluster (ORM broker,
2 workers) running one task per item. The cluster is started and warm before the clock
starts. Prints the worker/task-per-item throughput ratio last.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import benchdb
import delivery_throughput

ITEMS = int(os.environ.get("BENCH_DJANGO_Q_ITEMS", "500"))
PROCESSES = 2
BENCH_DIR = Path(__file__).resolve().parent


def deliver_one(item_id: int) -> str:
    """The task-per-item design: lease one item, deliver it, record the outcome."""
    from django.conf import settings
    from django.db.models import Q
    from django.utils import timezone

    from opsconsole.outbound.guard import post_json
    from opsconsole.workers.claims import claim_due_rows, new_lease_owner
    from recovery import services
    from recovery.models import RecoveryItem

    owner = new_lease_owner("django_q_task")
    due = services.due_items_filter() & Q(pk=item_id)
    if not claim_due_rows(RecoveryItem, filters=due, owner=owner, limit=1, lease_seconds=120):
        return "not_due"
    item = RecoveryItem.objects.select_related("integration").get(pk=item_id)
    request = services.delivery_start(item, lease_owner=owner)
    if request is None:
        return "held_paused"
    started_at = timezone.now()
    result = post_json(
        request.url,
        body=request.body,
        raw=request.content,
        headers=request.headers,
        timeout_seconds=settings.INTEGRATION_HTTP_TIMEOUT_SECONDS,
    )
    return services.recovery_item_record_outcome(
        item_id=item_id,
        lease_owner=owner,
        request=request,
        result=result,
        started_at=started_at,
        item=item,
    )


def ready() -> str:
    return "ready"


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def task_per_item_seconds() -> float:
    from django_q.models import Success
    from django_q.tasks import async_task

    from recovery.models import RecoveryItem

    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])),
        "Q_WORKERS": str(PROCESSES),
        "LOG_LEVEL": "WARNING",
    }
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=benchdb.ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        warm = async_task("delivery_vs_django_q.ready")
        wait_until(lambda: Success.objects.filter(id=warm).exists(), 120, "the cluster to start")
        started = time.perf_counter()
        for item_id in RecoveryItem.objects.order_by("pk").values_list("pk", flat=True):
            async_task("delivery_vs_django_q.deliver_one", item_id)
        wait_until(
            lambda: RecoveryItem.objects.filter(status="succeeded").count() == ITEMS,
            600,
            "the tasks to deliver every item",
        )
        return time.perf_counter() - started
    finally:
        cluster.terminate()
        cluster.wait(30)


def main() -> None:
    os.environ["BENCH_DELIVERY_ITEMS"] = str(ITEMS)
    benchdb.setup("djangoq")
    from django.db import connections

    from recovery.models import RecoveryItem

    delivery_throughput.ITEMS = ITEMS
    url = delivery_throughput.start_endpoint()
    delivery_throughput.seed(url)
    connections.close_all()
    worker_seconds = delivery_throughput.drain(delivery_throughput.worker_loop, (50,), PROCESSES)
    assert RecoveryItem.objects.filter(status="succeeded").count() == ITEMS
    delivery_throughput.seed(url)
    task_seconds = task_per_item_seconds()
    worker_rate, task_rate = ITEMS / worker_seconds, ITEMS / task_seconds
    print(
        f"{ITEMS} items, {PROCESSES} processes each: worker {worker_rate:.1f}/s, "
        f"one django-q2 task per item {task_rate:.1f}/s"
    )
    print(
        f"delivery worker/django-q2 task-per-item throughput ratio: {worker_rate / task_rate:.2f}"
    )


if __name__ == "__main__":
    main()
