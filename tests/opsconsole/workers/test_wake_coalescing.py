"""Wakes of one worker are coalesced per process: the first goes at once, every later one
within the window is answered by one more wake at the window's end, never dropped."""

from __future__ import annotations

import time

import pytest
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from opsconsole.workers import wakes

DELIVERY = "integration_delivery_worker"
BULK = "bulk_action_worker"


def queued(worker: str) -> int:
    """Wakes of `worker` waiting in the task queue: its one entry point with its name."""
    tasks = (SignedPackage.loads(row.payload) for row in OrmQ.objects.all())
    return sum(
        1 for task in tasks if (task["func"], task["args"][:1]) == (wakes.RUN_TASK, (worker,))
    )


def wait_for(worker: str, count: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while queued(worker) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return queued(worker)


@pytest.fixture
def window(settings):
    settings.WAKE_COALESCE_MS = 300
    wakes._last_sent.clear()
    yield 0.3
    time.sleep(0.35)  # no trailing wake of this test lands in the next one
    wakes._last_sent.clear()


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_wakes_queues_one_now_and_one_at_the_window_end(window):
    for _ in range(50):
        wakes.wake(DELIVERY, "replay")
    assert queued(DELIVERY) == 1  # the first, at once
    assert wait_for(DELIVERY, 2, seconds=2) == 2  # the other 49: one wake at the window's end
    time.sleep(window * 2)
    assert queued(DELIVERY) == 2  # and nothing more without a new wake


@pytest.mark.django_db(transaction=True)
def test_each_task_has_its_own_window_and_a_later_wake_is_sent_again(window):
    wakes.wake(DELIVERY, "replay")
    wakes.wake(BULK, "start")
    assert (queued(DELIVERY), queued(BULK)) == (1, 1)
    time.sleep(window + 0.05)
    wakes.wake(DELIVERY, "replay")  # the window has passed: sent at once
    assert queued(DELIVERY) == 2


@pytest.mark.django_db(transaction=True)
def test_ingested_batches_in_a_burst_wake_the_delivery_worker_twice(window, integration, settings):
    from tests.helpers import token_client
    from tests.opsconsole.factories import UserFactory

    # A window wide enough for ten requests on a loaded test machine: the burst is inside it.
    settings.WAKE_COALESCE_MS = 3000

    client = token_client(UserFactory(username="burst-producer", groups=["Event producer"]))
    for batch in range(10):
        events = [{"event_type": "booking.confirmed", "payload": {"n": batch}}]
        response = client.post(
            f"/platform/integrations/{integration.pk}/events/batch",
            {"events": events},
            format="json",
        )
        assert response.status_code == 202
    assert queued(DELIVERY) == 1
    assert wait_for(DELIVERY, 2, seconds=5) == 2
    time.sleep(3.2)  # the window's end again: no third wake without a new event
    assert queued(DELIVERY) == 2
