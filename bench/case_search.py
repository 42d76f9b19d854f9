"""The customer case search at 10M rows (issue: start from the customer): the operator-views
database (10M delivery items and audit events) plus 10M communication-log rows and 1M
users, bookings with their holds, payments, hosted sessions and vouchers; SMALL is the same
world at 10k. Times the search API by email, phone, booking id, payment intent, voucher
code, session reference and request id, and the case's first page, with the in-process
client as a logged-in superuser (median of 5). Prints the medians and, last, the BIG/SMALL
ratios; the target is every search under 200 ms at BIG."""

from __future__ import annotations

import os
import sys
import time

import benchdb
import operator_views

SMALL = int(os.environ.get("BENCH_CASES_SMALL", "10000"))
BIG = int(os.environ.get("BENCH_CASES_BIG", "10000000"))


def fill_customers(cursor, rows: int) -> None:
    """rows/10 customers, each with a booking (and its hold), a card payment, a hosted
    session and a voucher; `rows` messages to them; deliveries name their bookings."""
    people = max(rows // 10, 100)
    cursor.execute(
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
        "email, is_staff, is_active, date_joined) SELECT '!', false, 'customer-' || n, '', '', "
        "'customer' || n || '@example.com', false, true, now() FROM generate_series(1, %s) n",
        [people],
    )
    cursor.execute(
        "INSERT INTO bookings_resource (name, active, created_at) "
        "SELECT 'court-' || n, true, now() "
        "FROM generate_series(1, 1000) n"
    )
    cursor.execute(
        "INSERT INTO bookings_bookinghold (resource_id, holder_id, start_time, end_time, status, "
        "occupies_slot, expires_at, next_check_at, lease_owner, created_at, cap_slot) "
        "SELECT r.id, u.id, t.start, t.start + interval '1 hour', 'CONFIRMED', true, now(), "
        "now(), '', now() - (u.n %% 43200) * interval '1 minute', NULL FROM "
        "(SELECT id, row_number() OVER (ORDER BY id) AS n FROM auth_user "
        " WHERE username LIKE 'customer-%%') u, "
        "LATERAL (SELECT id FROM bookings_resource ORDER BY id OFFSET u.n %% 1000 LIMIT 1) r, "
        "LATERAL (SELECT now() + (u.n / 1000) * interval '1 hour' AS start) t",
        [],
    )
    cursor.execute(
        "INSERT INTO bookings_booking (hold_id, resource_id, customer_id, start_time, end_time, "
        "status, payment_status, payment_id, cancellation_step, cancellation_error, "
        "cancellation_reason, cancelled_by, created_at, updated_at) SELECT id, resource_id, "
        "holder_id, start_time, end_time, 'CONFIRMED', 'PAID', NULL, '', '', '', '', created_at, "
        "created_at FROM bookings_bookinghold"
    )
    cursor.execute(
        "INSERT INTO payments_payment (reference, subject, amount, currency, method, "
        "provider_payment_id, status, amount_refunded, unapplied_reason, recorded_by, "
        "created_at) SELECT 'stripe_pi_' || id, 'booking:' || id, 45, 'EUR', 'card', "
        "'pi_' || id, 'succeeded', 0, '', '', created_at FROM bookings_booking"
    )
    cursor.execute(
        "INSERT INTO payments_hostedcheckoutsession (reference, provider_session_id, "
        "customer_email, customer_phone, amount, currency, status, checkout_url, retry_count, "
        "max_retries, attempts_since_notification, last_error, metadata, version, lease_owner, "
        "created_at, updated_at) SELECT 'hcs_' || n, 'cs_' || n, "
        "'customer' || n || '@example.com', '+35191' || lpad(n::text, 7, '0'), 45, 'EUR', "
        "'completed', '', 0, 5, 0, '', '{}', 1, '', now(), now() "
        "FROM generate_series(1, %s) n",
        [people],
    )
    cursor.execute(
        "INSERT INTO payments_voucher (code, description, value, currency, station_scope, "
        "status, customer_email, void_reason, issued_at, redeemed_station) "
        "SELECT 'V' || upper(substr(md5(n::text), 1, 11)), 'bench', 10, 'EUR', '*', 'issued', "
        "'customer' || n || '@example.com', '', now(), '' FROM generate_series(1, %s) n",
        [people],
    )
    cursor.execute(
        "INSERT INTO communication_log (channel, template, recipient, status, provider, "
        "provider_message_id, failure_code, failure_detail, subject_type, subject_id, "
        "triggered_by, idempotency_key, context, duration_ms, request_id, created_at) "
        "SELECT 'email', 'booking_confirmed', 'customer' || (1 + n %% %s) || '@example.com', "
        "'sent', 'resend', 'em_' || n, '', '', 'bookings.booking', (n %% %s)::text, 'bench', "
        "'k' || n, '{}', 10, '', now() - (n %% 43200) * interval '1 minute' "
        "FROM generate_series(1, %s) n",
        [people, people, rows],
    )
    cursor.execute("ANALYZE")


def searches(people: int) -> list[tuple[str, str]]:
    from opsconsole.models import AuditEvent
    from payments.models import Voucher

    n = people // 2
    code = Voucher.objects.values_list("code", flat=True).get(
        customer_email=f"customer{n}@example.com"
    )
    request_id = AuditEvent.objects.values_list("server_request_id", flat=True).order_by("id")[7]
    return [
        ("by email", f"/api/v1/cases?q=customer{n}@example.com"),
        ("by phone", f"/api/v1/cases?q=%2B35191{n:07d}"),
        ("by booking id", f"/api/v1/cases?q={n}"),
        ("by payment intent", f"/api/v1/cases?q=pi_{n}"),
        ("by voucher code", f"/api/v1/cases?q={code}"),
        ("by session reference", f"/api/v1/cases?q=hcs_{n}"),
        ("by request id", f"/api/v1/cases?q={request_id}"),
    ]


def main() -> None:
    os.environ["BENCH_ADMIN_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    benchdb.setup("cases_boot")
    from django.db import connection
    from django.test import Client

    results = {}
    for rows in (SMALL, BIG):
        operator_views.database_for(rows)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            fill_customers(cursor, rows)
        print(
            f"customers for {rows} filled in {time.perf_counter() - started:.0f} s", file=sys.stderr
        )
        from tests.opsconsole.factories import UserFactory

        client = Client()
        client.force_login(UserFactory(username=f"bench-root-{rows}", superuser=True))
        people = max(rows // 10, 100)
        urls = searches(people)
        matches = client.get(urls[0][1]).json()["matches"]
        assert matches, "the customer is found"
        urls.append(("case first page", f"/api/v1/cases/{matches[0]['ref']}"))
        operator_views.measure(client, urls)  # warm caches and plans once
        results[rows] = operator_views.measure(client, urls)
    print(f"{'case search':24} {SMALL:>10} {BIG:>10}  ratio")
    for label in results[SMALL]:
        small, big = results[SMALL][label], results[BIG][label]
        print(f"{label:24} {small:8.1f}ms {big:8.1f}ms  {big / small:5.2f}x")
    slowest = max(results[BIG].values())
    print(
        f"case search BIG/SMALL ratios (slowest at BIG {slowest:.0f} ms): "
        + ", ".join(f"{k} {results[BIG][k] / results[SMALL][k]:.2f}" for k in results[SMALL])
    )


if __name__ == "__main__":
    main()
