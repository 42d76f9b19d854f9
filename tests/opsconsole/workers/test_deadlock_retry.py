from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction

from bookings.models import Resource
from opsconsole.db.transactions import retry_on_deadlock


@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_is_retried_and_both_transactions_complete():
    """Two transactions lock two rows in opposite order; PostgreSQL kills one, we retry it."""
    first = Resource.objects.create(name="a")
    second = Resource.objects.create(name="b")
    both_hold_one = threading.Barrier(2)
    calls: list[str] = []
    results: dict[str, str] = {}

    @retry_on_deadlock(max_tries=3, base_delay_seconds=0.05)
    def lock_in_order(name: str, order: list[int]) -> str:
        calls.append(name)
        with transaction.atomic():
            Resource.objects.select_for_update().get(pk=order[0])
            if calls.count(name) == 1:
                both_hold_one.wait(timeout=5)
            Resource.objects.select_for_update().get(pk=order[1])
        return "done"

    def run(name: str, order: list[int]) -> None:
        try:
            results[name] = lock_in_order(name, order)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=("ab", [first.pk, second.pk])),
        threading.Thread(target=run, args=("ba", [second.pk, first.pk])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"ab": "done", "ba": "done"}
    assert len(calls) == 3  # one of them was the deadlock victim and ran again


@pytest.mark.django_db
def test_other_database_errors_are_not_retried():
    calls = []

    @retry_on_deadlock()
    def broken() -> None:
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_anywhere")

    with pytest.raises(Exception, match="no_such_table_anywhere"):
        broken()
    assert calls == [1]


def test_it_gives_up_after_three_tries():
    calls = []

    class SerializationFailure(Exception):
        sqlstate = "40001"

    @retry_on_deadlock(max_tries=3, base_delay_seconds=0.001)
    def always_conflicting() -> None:
        calls.append(1)
        raise OperationalError("could not serialize access") from SerializationFailure()

    with pytest.raises(OperationalError):
        always_conflicting()
    assert len(calls) == 3
