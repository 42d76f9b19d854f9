"""The retention job at 10M delivery attempts against 10k: does its cost follow the table?

Each size holds history already redacted by earlier runs plus 2,000 attempts newly past the
window. The job's run (redact those 2,000) is timed against a raw UPDATE of the same rows.
Prints the 10M/10k ratio of the job's time on its last line (target: within 2x).
"""

from __future__ import annotations

import os
import time

import benchdb

NEW = 2000
SIZES = (("10k", 10_000), ("10M", int(os.environ.get("BENCH_RETENTION_ROWS", "10000000"))))


def fill(item_id: int, redacted: int, fresh: int) -> None:
    """`redacted` old attempts already redacted, then `fresh` old ones not yet."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE recovery_deliveryattempt")
        for count, redacted_at in ((redacted, "now() - interval '1 day'"), (fresh, "NULL")):
            cursor.execute(
                f"""INSERT INTO recovery_deliveryattempt (item_id, number, replay_count, outcome,
                    failure_code, failure_detail, duration_ms, request_snapshot, response_snapshot,
                    lease_owner, started_at, finished_at, redacted_at)
                    SELECT %s, 1, 0, 'succeeded', '', '', 1,
                           '{{"body": {{"email": "a@example.com"}}}}', '{{"body": "ok"}}', 'bench',
                           now() - interval '100 days', now() - interval '100 days', {redacted_at}
                    FROM generate_series(1, %s)""",
                [item_id, count],
            )
        cursor.execute("VACUUM ANALYZE recovery_deliveryattempt")


def main() -> None:
    benchdb.setup("retention")
    from django.db import connection

    from recovery import services
    from recovery.reports.retention import retention_redact_table

    integration = services.integration_create(
        name="bench", endpoint_url="http://127.0.0.1:9/x", actor="bench"
    )
    item = services.recovery_item_enqueue(integration=integration, event_type="e", payload={})
    job: dict[str, float] = {}
    for label, rows in SIZES:
        fill(item.pk, rows - NEW, NEW)
        started = time.perf_counter()
        assert retention_redact_table("delivery_attempts") == NEW
        job[label] = time.perf_counter() - started
        fill(item.pk, rows - NEW, NEW)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                """UPDATE recovery_deliveryattempt SET redacted_at = now(),
                   request_snapshot = '{"body": {"redacted": true}}'
                   WHERE redacted_at IS NULL AND started_at < now() - interval '90 days'"""
            )
        raw = time.perf_counter() - started
        print(f"{label:>3} attempts: job {job[label]:.2f} s, raw UPDATE {raw:.2f} s ({NEW} rows)")
    print(f"retention job 10M/10k time ratio: {job['10M'] / job['10k']:.2f}")


if __name__ == "__main__":
    main()
