"""One bulk engine: the admin's old bulk replay jobs live on as bulk actions, and a bulk
replay wakes the delivery worker once per batch, not once per item."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from opsconsole.workers.wakes import RUN_TASK
from recovery.inbox import bulk_actions
from recovery.inbox.bulk_actions import bulk_action_create, bulk_action_run, bulk_action_transition
from recovery.models import BulkAction, RecoveryItem
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import ParkedItemFactory

BEFORE = [("recovery", "0012_retention_unredacted_index")]
AFTER = [("recovery", "0014_remove_bulk_replay_jobs")]


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_the_latest_schema():
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_bulk_replay_jobs_become_bulk_actions_with_their_progress(integration):
    done, skipped, todo = (
        ParkedItemFactory(integration=integration, status="dlq") for _ in range(3)
    )
    old = migrate(BEFORE)
    job_model = old.get_model("recovery", "BulkReplayJob")
    member_model = old.get_model("recovery", "BulkReplayJobItem")
    user = old.get_model("auth", "User").objects.create(username="ana")
    job = job_model.objects.create(
        status="running",
        filter_description={"admin_filter": "status=dlq", "selected": 3},
        reason="vendor fixed",
        requested_by_id=user.pk,
        request_id="req-1",
        total=3,
        processed=2,
        replayed=1,
        skipped=1,
    )
    now = timezone.now()
    member_model.objects.create(job=job, item_id=done.pk, processed_at=now, outcome="replayed")
    member_model.objects.create(
        job=job, item_id=skipped.pk, processed_at=now, outcome="skipped_paused"
    )
    member_model.objects.create(job=job, item_id=todo.pk)

    new = migrate(AFTER)
    action = new.get_model("recovery", "BulkAction").objects.get()
    assert (action.source, action.status, action.reason, action.created_by) == (
        "integration_delivery",
        "running",
        "vendor fixed",
        "ana",
    )
    assert (action.total, action.processed, action.replayed, action.failed) == (3, 2, 1, 1)
    assert action.request_id == "req-1"
    assert action.filter_description["bulk_replay_job"] == job.pk
    outcomes = dict(action.items.values_list("source_id", "outcome"))
    assert outcomes == {done.pk: "replayed", skipped.pk: "failed", todo.pk: "pending"}

    # The migrated action finishes under the one engine (at today's schema): the pending
    # item, once.
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    bulk_action_run(action_id=action.pk, max_seconds=5)
    finished = BulkAction.objects.get(pk=action.pk)
    assert (finished.status, finished.processed, finished.replayed) == ("completed", 3, 2)
    assert RecoveryItem.objects.get(pk=todo.pk).status == "replayed"


def queued_wakes(worker: str) -> int:
    """Wakes of `worker` in the task queue: its one entry point with its name."""
    tasks = (SignedPackage.loads(row.payload) for row in OrmQ.objects.all())
    return sum(1 for task in tasks if (task["func"], task["args"][:1]) == (RUN_TASK, (worker,)))


@pytest.mark.django_db(transaction=True)
def test_a_bulk_replay_wakes_the_delivery_worker_once_per_batch(integration, monkeypatch):
    operator = UserFactory(username="op-wakes", groups=["Support operator"])
    items = [ParkedItemFactory(integration=integration, status="dlq") for _ in range(30)]
    monkeypatch.setattr(bulk_actions, "WAKE_BATCH_ITEMS", 10)
    monkeypatch.setattr(bulk_actions, "WAKE_BATCH_SECONDS", 3600.0)
    action = bulk_action_create(
        source="integration_delivery",
        ids=[i.pk for i in items],
        actor=operator,
        reason="vendor fixed",
        rate_per_second=50,
    )
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    OrmQ.objects.all().delete()  # the start's own wake of the bulk worker

    assert bulk_action_run(action_id=action.pk, max_seconds=30) == 30
    assert RecoveryItem.objects.filter(status="replayed").count() == 30
    # 30 replays in batches of 10: three wakes (plus none for the empty end), not thirty.
    assert queued_wakes("integration_delivery_worker") == 3


@pytest.mark.django_db(transaction=True)
def test_a_single_replay_still_wakes_the_delivery_worker_at_once(integration):
    operator = UserFactory(username="op-one", groups=["Support operator"])
    item = ParkedItemFactory(integration=integration, status="dlq")
    from recovery import services

    services.recovery_item_replay(
        integration_id=integration.pk, item_id=item.pk, actor=operator, reason="fixed"
    )
    assert queued_wakes("integration_delivery_worker") == 1


@pytest.mark.django_db
def test_the_last_item_completes_the_action_in_its_own_commit(integration):
    """Its page never shows every item done while the status still says running (the next
    claim, which used to complete it, may be a pace away)."""
    item = ParkedItemFactory(integration=integration, status="dlq")
    action = bulk_action_create(
        actor="oncall", reason="fixed", source="integration_delivery", ids=[item.pk]
    )
    bulk_action_transition(action_id=action.pk, verb="start", actor="oncall", reason="go")
    claimed = bulk_actions._next_item(action.pk)
    bulk_actions._finish_item(action.pk, claimed, "replayed", "")
    action.refresh_from_db()
    assert (action.processed, action.status) == (1, "completed")
