"""Operator views at 10M rows (issue: operator views at ten million rows): every admin
changelist staff open in an incident, the console overview, the failure inbox and a group's
page, /metrics and readyz, timed with the in-process client as a logged-in superuser
(median of 5) at SMALL (10k) and BIG (10M) delivery items and audit events.

Each size is filled once with generate_series and kept as a template database
(opsconsole_bench_views_<rows>_tpl), so a rerun copies it instead of refilling. Prints each
view's medians and, last, the BIG/SMALL ratios."""

from __future__ import annotations

import os
import statistics
import sys
import time

import benchdb

SMALL = int(os.environ.get("BENCH_VIEWS_SMALL", "10000"))
BIG = int(os.environ.get("BENCH_VIEWS_BIG", "10000000"))
REPEATS = 5
FILL_VERSION = "2"

STATUSES = (
    "ARRAY['succeeded','succeeded','succeeded','succeeded','dlq','failed','retrying','pending']"
)
EVENTS = (
    "ARRAY['platform.integration.recovery.replayed','platform.integration.recovery.retry_scheduled',"
    "'platform.integration.recovery.succeeded','platform.integration.recovery.inbox.dlq',"
    "'payments.refund.succeeded','payments.refund.failed','notifications.sent',"
    "'bookings.hold.created','bookings.booking.confirmed','platform.worker.disabled']"
)


def fill(cursor, rows: int) -> None:
    """Delivery items across 4 integrations, one attempt per 10 items, and audit events."""
    from opsconsole.failures.fingerprints import failure_fingerprint

    cursor.execute(
        "INSERT INTO recovery_integration (name, endpoint_url, payload_schema, enabled, paused, "
        "paused_reason, event_types, signing_secrets, max_in_flight, rate_per_second, "
        "ordering_key_path, created_at, updated_at) SELECT 'partner-' || n, "
        "'https://partner' || n || '.example.com/hooks', NULL, true, false, '', '[\"*\"]', "
        "'[]', 10, 50, '', now(), now() FROM generate_series(1, 4) AS n"
    )
    prints = [
        failure_fingerprint(
            app="recovery",
            source="integration_delivery",
            provider=f"partner-{n}",
            failure_code=code,
            error=detail,
        )
        for n in range(1, 5)
        for code, detail in (
            ("HTTP_503", "HTTP 503: upstream down"),
            ("HTTP_400", "HTTP 400: unknown customer cus_1"),
        )
    ]
    cursor.execute(
        "INSERT INTO recovery_recoveryitem (integration_id, event_type, payload, status, "
        "attempt_count, max_attempts, replay_count, next_retry_at, lease_owner, failure_code, "
        "failure_detail, failure_fingerprint, request_snapshot, response_snapshot, event_id, "
        "ordering_key, request_id, traceparent, created_at, updated_at) "
        "SELECT i.id, 'booking.confirmed', "
        "jsonb_build_object('booking_id', n, 'email', 'c' || n || '@example.com'), s.status, 1, 5, "
        "0, NULL, '', CASE WHEN s.status IN ('dlq','retrying') THEN 'HTTP_503' "
        "WHEN s.status = 'failed' THEN 'HTTP_400' ELSE '' END, "
        "CASE WHEN s.status IN ('dlq','retrying') THEN 'HTTP 503: upstream down' "
        "WHEN s.status = 'failed' THEN 'HTTP 400: unknown customer cus_' || n ELSE '' END, "
        "CASE WHEN s.status IN ('dlq','retrying') THEN (%s::text[])[1 + (n %% 4) * 2] "
        "WHEN s.status = 'failed' THEN (%s::text[])[2 + (n %% 4) * 2] ELSE '' END, "
        "'{}', '{}', 'evt-' || n, '', md5(n::text), '', "
        "now() - (n %% 43200) * interval '1 minute', now() "
        f"FROM generate_series(1, %s) AS n, LATERAL (SELECT ({STATUSES})[1 + n %% 8] AS status) s, "
        "LATERAL (SELECT id FROM recovery_integration ORDER BY id OFFSET n %% 4 LIMIT 1) i",
        [prints, prints, rows],
    )
    cursor.execute(
        "INSERT INTO recovery_deliveryattempt (item_id, number, replay_count, outcome, "
        "http_status, failure_code, failure_detail, retry_after_seconds, duration_ms, "
        "request_snapshot, response_snapshot, lease_owner, started_at, finished_at) "
        "SELECT id, 1, 0, CASE WHEN status = 'succeeded' THEN 'succeeded' ELSE 'failed' END, "
        "CASE WHEN status = 'succeeded' THEN 200 ELSE 503 END, failure_code, failure_detail, "
        "NULL, 120, '{}', '{}', 'bench', created_at, created_at "
        "FROM recovery_recoveryitem WHERE id % 10 = 0"
    )
    cursor.execute(
        "INSERT INTO platform_auditevent (event, object_type, object_id, before_state, "
        "after_state, actor, actor_user_id, reason, request_id, server_request_id, traceparent, "
        "metadata, created_at) "
        f"SELECT ({EVENTS})[1 + n %% 10], 'recovery.recoveryitem', (n %% 100000)::text, NULL, "
        "NULL, CASE WHEN n %% 50 = 0 THEN 'oncall' ELSE 'worker:integration_delivery_worker' END, "
        "NULL, CASE WHEN n %% 50 = 0 THEN 'replayed after the partner fix ' || n ELSE '' END, "
        "md5(n::text), md5(n::text), '', '{}', "
        "now() - (n %% 43200) * interval '1 minute' "
        "FROM generate_series(1, %s) AS n",
        [rows],
    )
    cursor.execute("ANALYZE")


def fill_tag() -> str:
    """The fill's version and the schema's (the newest migration of each app): a template
    made before a migration is refilled, not reused with an old schema."""
    import hashlib

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    leaves = sorted(MigrationLoader(connection, ignore_no_migrations=True).graph.leaf_nodes())
    return f"fill {FILL_VERSION} " + hashlib.sha256(repr(leaves).encode()).hexdigest()[:12]


def database_for(rows: int) -> str:
    """A fresh copy of the filled template for `rows`, filling the template first if new."""
    import psycopg
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    name, template = f"opsconsole_bench_views_{rows}", f"opsconsole_bench_views_{rows}_tpl"
    admin_dsn = os.environ["BENCH_ADMIN_URL"]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        found = admin.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [template],
        ).fetchone()
        tag = fill_tag()
        if found is None or found[0] != tag:
            started = time.perf_counter()
            admin.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{template}"')
            connection.close()
            settings.DATABASES["default"]["NAME"] = template
            call_command("migrate", verbosity=0)
            with connection.cursor() as cursor:
                fill(cursor, rows)
            connection.close()
            admin.execute(f"COMMENT ON DATABASE \"{template}\" IS '{tag}'")
            print(f"filled {rows} rows in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    connection.close()
    settings.DATABASES["default"]["NAME"] = name
    return name


def views() -> list[tuple[str, str]]:
    from recovery.inbox.groups import failure_groups

    fingerprint = failure_groups()[0].fingerprint
    return [
        ("admin recovery items", "/admin/recovery/recoveryitem/"),
        ("admin recovery items, dlq", "/admin/recovery/recoveryitem/?status__exact=dlq"),
        ("admin recovery item search", "/admin/recovery/recoveryitem/?q=12345"),
        ("admin delivery by event id", "/admin/recovery/recoveryitem/?q=evt-9997"),
        ("admin delivery by email", "/admin/recovery/recoveryitem/?q=c9997@example.com"),
        ("admin delivery by error text", "/admin/recovery/recoveryitem/?q=customer+cus_9997"),
        ("admin audit events", "/admin/platform/auditevent/"),
        (
            "admin audit, by event",
            "/admin/platform/auditevent/?event=payments.refund.failed",
        ),
        (
            "admin audit search",
            "/admin/platform/auditevent/?q=" + "c4ca4238a0b923820dcc509a6f75849b",
        ),
        ("admin audit, by object", "/admin/platform/auditevent/?q=recovery.recoveryitem:4242"),
        ("admin audit, by reason", "/admin/platform/auditevent/?q=partner+fix+9950"),
        ("admin notifications", "/admin/notifications/notification/"),
        ("admin refunds", "/admin/payments/refund/"),
        ("admin hosted sessions", "/admin/payments/hostedcheckoutsession/"),
        ("admin holds", "/admin/bookings/bookinghold/"),
        ("admin bookings", "/admin/bookings/booking/"),
        ("console overview", "/admin/overview/"),
        ("failure inbox (admin)", "/admin/failures/"),
        ("failure inbox (API)", "/api/v1/failures"),
        ("failure group page", f"/admin/failures/{fingerprint}/"),
        ("/metrics", "/metrics"),
        ("readyz", "/api/v1/health/readyz"),
    ]


def measure(client, urls: list[tuple[str, str]]) -> dict[str, float]:
    medians = {}
    for label, url in urls:
        samples = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            response = client.get(url, HTTP_AUTHORIZATION="Bearer bench-metrics-token")
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        medians[label] = statistics.median(samples)
    return medians


def main() -> None:
    os.environ["BENCH_ADMIN_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    benchdb.setup("views_boot")
    from django.test import Client

    results = {}
    for rows in (SMALL, BIG):
        database_for(rows)
        from opsconsole.monitoring.queue_depth import queue_depth_sample
        from tests.opsconsole.factories import UserFactory

        queue_depth_sample()  # the sampler's minute, as a running console has it

        client = Client()
        client.force_login(UserFactory(username=f"bench-root-{rows}", superuser=True))
        urls = views()
        measure(client, urls)  # warm caches and plans once
        results[rows] = measure(client, urls)
    print(f"{'view':32} {SMALL:>10} {BIG:>10}  ratio")
    for label in results[SMALL]:
        small, big = results[SMALL][label], results[BIG][label]
        print(f"{label:32} {small:8.1f}ms {big:8.1f}ms  {big / small:5.2f}x")
    print(
        "operator views BIG/SMALL ratios: "
        + ", ".join(
            f"{label} {results[BIG][l2] / results[SMALL][l2]:.2f}"
            for label, l2 in ((k, k) for k in results[SMALL])
        )
    )


if __name__ == "__main__":
    main()
