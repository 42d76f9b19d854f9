"""Bulk replays from the failure inbox: dry run, pacing, approval where money moves,
pause/resume/abort, one pacer per provider, and the API."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.utils import timezone

from opsconsole.models import AuditEvent
from recovery.inbox import groups as inbox
from recovery.inbox.bulk_actions import bulk_action_create, bulk_action_run, bulk_action_transition
from recovery.models import BulkAction, BulkActionItem, RecoveryItem
from tests.helpers import error_of
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import failed_refund
from tests.recovery.factories import ParkedItemFactory
from tests.workers import run_as

FAILURES = "/api/v1/failures"


@pytest.mark.django_db
def test_a_bulk_replay_is_a_dry_run_first_then_paced_and_each_item_once(integration, operator):
    items = [
        ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
        for _ in range(4)
    ]
    group = next(g for g in inbox.failure_groups() if g.source == "integration_delivery")
    action = bulk_action_create(
        actor=operator, reason="provider back", fingerprint=group.fingerprint, rate_per_second=4
    )
    assert action.status == "ready" and not action.moves_money
    assert action.preview["count"] == 4
    assert action.preview["sample"][0]["predicted"] == "dlq → replayed"
    assert RecoveryItem.objects.filter(status="replayed").count() == 0  # a dry run only
    # An item that fails later is not swept in: the id set is frozen.
    ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    started = timezone.now()
    assert bulk_action_run(action_id=action.pk, max_seconds=10) == 4
    elapsed = (timezone.now() - started).total_seconds()
    assert elapsed >= 0.74  # 4 items at 4 per second: paced, not flooded
    action.refresh_from_db()
    assert (action.status, action.replayed, action.processed) == ("completed", 4, 4)
    assert {i.pk for i in items} == set(
        RecoveryItem.objects.filter(status="replayed").values_list("pk", flat=True)
    )
    assert bulk_action_run(action_id=action.pk, max_seconds=1) == 0  # done is done
    events = AuditEvent.objects.filter(event="platform.integration.recovery.replayed")
    assert events.count() == 4


@pytest.mark.django_db
def test_pause_resume_and_abort(integration, operator):
    for _ in range(3):
        ParkedItemFactory(integration=integration, status="dlq")
    action = bulk_action_create(
        actor=operator,
        reason="r",
        source="integration_delivery",
        ids=list(RecoveryItem.objects.values_list("pk", flat=True)),
        rate_per_second=50,
    )
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    bulk_action_transition(action_id=action.pk, verb="pause", actor=operator, reason="hold on")
    assert bulk_action_run(action_id=action.pk, max_seconds=2) == 0
    bulk_action_transition(action_id=action.pk, verb="resume", actor=operator, reason="ok")
    bulk_action_transition(action_id=action.pk, verb="abort", actor=operator, reason="stop")
    assert bulk_action_run(action_id=action.pk, max_seconds=2) == 0
    assert BulkAction.objects.get(pk=action.pk).status == "aborted"
    verbs = list(
        AuditEvent.objects.filter(
            object_id=str(action.pk), event__startswith="recovery.bulk_action"
        )
        .order_by("id")
        .values_list("event", flat=True)
    )
    assert verbs[-4:] == [
        "recovery.bulk_action.start",
        "recovery.bulk_action.pause",
        "recovery.bulk_action.resume",
        "recovery.bulk_action.abort",
    ]


@pytest.mark.django_db
def test_money_moving_actions_need_a_second_operator(operator, stripe_ok):
    refund = failed_refund()
    action = bulk_action_create(actor=operator, reason="r", source="refund", ids=[refund.pk])
    assert (action.status, action.moves_money) == ("awaiting_approval", True)
    from recovery.inbox.bulk_actions import SecondOperatorRequired

    with pytest.raises(SecondOperatorRequired):
        bulk_action_transition(action_id=action.pk, verb="approve", actor=operator, reason="me")
    other = UserFactory(username="second-op", groups=["Support operator"])
    bulk_action_transition(action_id=action.pk, verb="approve", actor=other, reason="checked")
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    bulk_action_run(action_id=action.pk, max_seconds=5)
    refund.refresh_from_db()
    assert refund.status == "COMPLETED"
    assert BulkActionItem.objects.get(action=action).detail == "FAILED → COMPLETED"


@pytest.fixture
def stripe_ok(httpserver, settings):
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test"
    httpserver.expect_request("/v1/refunds").respond_with_json({"id": "re_ok"})
    return httpserver


@pytest.mark.django_db
def test_bulk_actions_through_the_api(integration, operator_client, viewer_client):
    ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    fingerprint = viewer_client.get(FAILURES).json()["groups"][0]["fingerprint"]
    created = operator_client.post(
        f"{FAILURES}/bulk-actions",
        {"fingerprint": fingerprint, "reason": "recovered", "rate_per_second": 10},
        format="json",
        HTTP_IDEMPOTENCY_KEY="bulk-1",
    )
    assert created.status_code == 201, created.content
    again = operator_client.post(
        f"{FAILURES}/bulk-actions",
        {"fingerprint": fingerprint, "reason": "recovered", "rate_per_second": 10},
        format="json",
        HTTP_IDEMPOTENCY_KEY="bulk-1",
    )
    assert again.json()["id"] == created.json()["id"]  # a double click makes one action
    assert BulkAction.objects.count() == 1
    action_id = created.json()["id"]
    started = operator_client.post(
        f"{FAILURES}/bulk-actions/{action_id}/start", {"reason": "go"}, format="json"
    )
    assert started.json()["status"] == "running"
    conflict = operator_client.post(
        f"{FAILURES}/bulk-actions/{action_id}/approve", {"reason": "x"}, format="json"
    )
    assert (conflict.status_code, error_of(conflict)["code"]) == (
        409,
        "OPS-409-BULK-ACTION-CONFLICT",
    )
    bad = operator_client.post(
        f"{FAILURES}/bulk-actions",
        {"reason": "x", "rate_per_second": 0, "fingerprint": fingerprint},
        format="json",
    )
    assert bad.status_code == 400
    assert viewer_client.get(f"{FAILURES}/bulk-actions/{action_id}").json()["total"] == 1


@pytest.mark.django_db(transaction=True)
def test_one_pacer_per_provider_across_worker_processes(integration):
    from recovery.inbox.bulk_actions import provider_pacing_lock
    from recovery.workers import BulkActionWorker

    operator = UserFactory(username="pacer", groups=["Support operator"])
    for _ in range(2):
        ParkedItemFactory(integration=integration, status="dlq")
    ids = list(RecoveryItem.objects.values_list("pk", flat=True))
    first = bulk_action_create(
        actor=operator, reason="a", source="integration_delivery", ids=ids[:1], rate_per_second=50
    )
    second = bulk_action_create(
        actor=operator, reason="b", source="integration_delivery", ids=ids[1:], rate_per_second=50
    )
    BulkAction.objects.filter(pk__in=[first.pk, second.pk]).update(provider="crm")
    for action in (first, second):
        bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    worker = BulkActionWorker(max_seconds=2)
    # One action per provider at a time.
    assert worker.claim(run_as(worker, "w"), limit=10) == [first.pk]
    held = threading.Event()
    release = threading.Event()

    def other_process_pacing() -> None:
        with provider_pacing_lock("crm"):
            held.set()
            release.wait(10)
        connections.close_all()

    other = threading.Thread(target=other_process_pacing)
    other.start()
    held.wait(5)
    assert worker.process(first.pk, run_as(worker, "w")) == "provider_busy"
    release.set()
    other.join()
    assert worker.process(first.pk, run_as(worker, "w")) == "items_done"
    assert BulkAction.objects.get(pk=first.pk).status == "completed"
    assert worker.claim(run_as(worker, "w"), limit=10) == [second.pk]


@pytest.mark.django_db(transaction=True)
def test_a_pacer_lease_left_by_a_killed_worker_is_taken_over_once_it_expires():
    from datetime import timedelta

    from django.utils import timezone

    from recovery.inbox.bulk_actions import provider_pacing_lock
    from recovery.models import ProviderPacer

    # A worker killed mid-run leaves its lease behind: live, it still keeps others out.
    ProviderPacer.objects.create(
        provider="crm", owner="killed", expires_at=timezone.now() + timedelta(seconds=30)
    )
    with provider_pacing_lock("crm") as acquired:
        assert not acquired
    assert ProviderPacer.objects.get(provider="crm").owner == "killed"  # not released by us
    ProviderPacer.objects.filter(provider="crm").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with provider_pacing_lock("crm", hold_seconds=60) as acquired:
        assert acquired
        lease = ProviderPacer.objects.get(provider="crm")
        assert lease.owner != "killed" and lease.expires_at > timezone.now()
        with provider_pacing_lock("crm") as second:
            assert not second  # one pacer at a time, even in the same process
    assert not ProviderPacer.objects.filter(provider="crm").exists()  # given back
