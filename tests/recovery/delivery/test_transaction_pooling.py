"""Behind PgBouncer in transaction pooling mode (DATABASE_TRANSACTION_POOLING=true, as `make
test` runs this directory a second time) no statement is prepared on a server session, and
nothing relies on a session of its own; directly on PostgreSQL the hot statements are
prepared once per connection."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from opsconsole.db.prepared import fetch_prepared

POOLED = os.environ.get("DATABASE_TRANSACTION_POOLING", "").lower() == "true"


@pytest.mark.django_db
def test_hot_statements_are_prepared_only_on_a_session_of_our_own():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    statement = "SELECT %s::int + 1"
    assert fetch_prepared(statement, [41]) == [(42,)]
    assert fetch_prepared(statement, [1]) == [(2,)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1::int%%'"
        )
        (prepared,) = cursor.fetchone()
    settings_dict = connection.settings_dict
    if POOLED:
        assert connection.connection.prepare_threshold is None  # even prepare=True is off
        assert settings_dict["TRANSACTION_POOLING"] is True
        assert settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True
        assert prepared == 0
    else:
        # Only opsconsole.db.prepared asks to prepare; psycopg's automatic kind stays off.
        assert connection.connection.prepare_threshold >= 2**31 - 1
        assert settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is False
        assert prepared == 1
