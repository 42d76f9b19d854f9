"""Ordering by key: an integration with an ordering key path gets the items of one key in
order; a later item waits while an earlier one retries, and a dead-lettered item holds its
key until it is replayed or resolved. Proven with concurrent workers on PostgreSQL."""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
from werkzeug import Request, Response

from recovery import services
from recovery.inbox.groups import failure_resolve
from recovery.models import RecoveryItem
from recovery.workers import IntegrationDeliveryWorker
from tests.helpers import run_concurrently
from tests.workers import deliver

PATH = "/hooks/ordered"


def ordered_integration(httpserver, name: str = "ordered"):
    return services.integration_create(
        name=name,
        endpoint_url=httpserver.url_for(PATH),
        ordering_key_path="booking_id",
        actor="test",
    )


def enqueue(integration, booking_id: int, seq: int) -> RecoveryItem:
    return services.recovery_item_enqueue(
        integration=integration,
        event_type="booking.updated",
        payload={"booking_id": booking_id, "seq": seq},
    )


def seqs(httpserver) -> list[tuple[int, int]]:
    return [(r.json["booking_id"], r.json["seq"]) for r, _ in httpserver.log]


@pytest.mark.django_db
def test_a_later_item_waits_while_an_earlier_one_of_its_key_retries(httpserver):
    integration = ordered_integration(httpserver)
    first, second = enqueue(integration, 1, 1), enqueue(integration, 1, 2)
    other = enqueue(integration, 2, 1)
    assert (first.ordering_key, other.ordering_key) == ("1", "2")
    httpserver.expect_oneshot_request(PATH).respond_with_data("busy", 503, {"Retry-After": "0"})
    httpserver.expect_request(PATH).respond_with_json({"ok": True})

    deliver()  # the first of key 1 fails; key 2 goes on; the second of key 1 waits
    assert seqs(httpserver) == [(1, 1), (2, 1)]
    second.refresh_from_db()
    assert (second.status, second.attempt_count) == ("pending", 0)
    deliver()  # the retry succeeds, and only then its successor is sent
    deliver()
    assert seqs(httpserver) == [(1, 1), (2, 1), (1, 1), (1, 2)]
    assert set(RecoveryItem.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.django_db
def test_a_dead_lettered_item_holds_its_key_until_replayed(httpserver, operator, admin_client):
    integration = ordered_integration(httpserver)
    first = enqueue(integration, 7, 1)
    RecoveryItem.objects.filter(pk=first.pk).update(max_attempts=1)
    second = enqueue(integration, 7, 2)
    httpserver.expect_oneshot_request(PATH).respond_with_data("down", 500)
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    deliver()
    first.refresh_from_db()
    assert first.status == "dlq"
    deliver()
    assert seqs(httpserver) == [(7, 1)]  # the second is held behind the dead letter
    page = admin_client.get(f"/admin/recovery/recoveryitem/{first.pk}/change/").content.decode()
    assert "holds back 1 later item(s)" in page
    page = admin_client.get(f"/admin/recovery/recoveryitem/{second.pk}/change/").content.decode()
    assert f"waits for #{first.pk} (dlq)" in page

    services.recovery_item_replay(
        integration_id=integration.pk, item_id=first.pk, actor=operator, reason="fixed"
    )
    deliver()
    deliver()
    assert seqs(httpserver) == [(7, 1), (7, 1), (7, 2)]


@pytest.mark.django_db
def test_resolving_a_dead_letter_releases_its_key(httpserver, operator):
    integration = ordered_integration(httpserver)
    first = enqueue(integration, 3, 1)
    RecoveryItem.objects.filter(pk=first.pk).update(max_attempts=1)
    enqueue(integration, 3, 2)
    httpserver.expect_oneshot_request(PATH).respond_with_data("down", 500)
    httpserver.expect_request(PATH).respond_with_json({"ok": True})
    deliver()
    deliver()
    assert seqs(httpserver) == [(3, 1)]
    assert failure_resolve(
        source="integration_delivery", source_id=first.pk, actor=operator, reason="sent by hand"
    )
    deliver()
    assert seqs(httpserver) == [(3, 1), (3, 2)]
    first.refresh_from_db()
    assert (first.status, first.ordering_key) == ("dlq", "")


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_send_an_item_before_its_predecessors_succeed(httpserver):
    """Four workers race over 4 keys x 10 items; a third of first attempts fail. Whenever
    the endpoint sees an item, every earlier item of its key has already succeeded."""
    lock = threading.Lock()
    succeeded: dict[int, set[int]] = defaultdict(set)
    attempts: dict[tuple[int, int], int] = defaultdict(int)
    out_of_order: list[tuple[int, int]] = []

    def handle(request: Request) -> Response:
        key, seq = request.json["booking_id"], request.json["seq"]
        with lock:
            if any(earlier not in succeeded[key] for earlier in range(seq)):
                out_of_order.append((key, seq))
            attempts[(key, seq)] += 1
            if seq % 3 == 0 and attempts[(key, seq)] == 1:
                return Response("busy", 503, {"Retry-After": "0"})
            succeeded[key].add(seq)
        return Response("ok")

    httpserver.expect_request(PATH).respond_with_handler(handle)
    integration = ordered_integration(httpserver, name="race")
    for seq in range(10):
        for key in range(4):
            enqueue(integration, key, seq)

    def work(_: int) -> None:
        worker = IntegrationDeliveryWorker(batch_size=3)
        idle = 0
        while idle < 20 and RecoveryItem.objects.exclude(status="succeeded").exists():
            idle = 0 if worker.run_once(triggered_by="test").claimed else idle + 1

    run_concurrently(work, 4)
    assert out_of_order == []
    assert {key: len(seen) for key, seen in succeeded.items()} == {k: 10 for k in range(4)}
    assert RecoveryItem.objects.filter(status="succeeded").count() == 40
