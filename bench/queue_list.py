"""Queue-list latency (GET /platform/integrations/{id}/recovery/queue) at 1M rows against
10k rows: first page, a filtered page and a deep keyset page. Prints the 1M/10k ratios last."""

from __future__ import annotations

import os
import statistics
import time

import benchdb

BIG = int(os.environ.get("BENCH_QUEUE_BIG", "1000000"))
SMALL = int(os.environ.get("BENCH_QUEUE_SMALL", "10000"))
REPEATS = 30


def fill(integration_id: int, rows: int) -> None:
    """Rows as the worker leaves them: failures carry their cause and inbox fingerprint."""
    from django.db import connection

    from opsconsole.failures.fingerprints import failure_fingerprint
    from recovery.models import Integration

    name = Integration.objects.get(pk=integration_id).name
    causes = {
        status: (
            code,
            detail,
            failure_fingerprint(
                app="recovery",
                source="integration_delivery",
                provider=name,
                failure_code=code,
                error=detail,
            ),
        )
        for status, code, detail in (
            ("dlq", "HTTP_503", "HTTP 503: upstream down"),
            ("failed", "HTTP_400", "HTTP 400: field amount is required"),
            ("retrying", "HTTP_503", "HTTP 503: upstream down"),
        )
    }
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO recovery_recoveryitem (integration_id, event_type, payload, status,
               attempt_count, max_attempts, replay_count, next_retry_at, lease_owner,
               failure_code, failure_detail, failure_fingerprint, request_snapshot,
               response_snapshot, request_id, traceparent, created_at, updated_at)
               SELECT %s, 'bench.event', jsonb_build_object('n', n), status, 1, 5, 0, NULL, '',
                      CASE status WHEN 'dlq' THEN %s WHEN 'failed' THEN %s
                                  WHEN 'retrying' THEN %s ELSE '' END,
                      CASE status WHEN 'dlq' THEN %s WHEN 'failed' THEN %s
                                  WHEN 'retrying' THEN %s ELSE '' END,
                      CASE status WHEN 'dlq' THEN %s WHEN 'failed' THEN %s
                                  WHEN 'retrying' THEN %s ELSE '' END,
                      '{}', '{}', '', '', now(), now()
               FROM (SELECT n, (ARRAY['succeeded', 'succeeded', 'succeeded', 'dlq', 'failed',
                                      'retrying'])[1 + n %% 6] AS status
                     FROM generate_series(1, %s) AS n) AS numbered""",
            [
                integration_id,
                *(causes[s][0] for s in ("dlq", "failed", "retrying")),
                *(causes[s][1] for s in ("dlq", "failed", "retrying")),
                *(causes[s][2] for s in ("dlq", "failed", "retrying")),
                rows,
            ],
        )
        cursor.execute("ANALYZE recovery_recoveryitem")


def median_ms(client, url: str, params: dict, repeats: int = REPEATS) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url, params)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content[:200]
    return statistics.median(samples)


def main() -> None:
    benchdb.setup("queue")
    from rest_framework.test import APIClient

    from recovery.models import Integration
    from tests.helpers import token_client
    from tests.opsconsole.factories import UserFactory

    small = Integration.objects.create(name="small", endpoint_url="http://x.test")
    big = Integration.objects.create(name="big", endpoint_url="http://x.test")
    client: APIClient = token_client(
        UserFactory(username="bench-viewer", groups=["Support viewer"])
    )
    # /metrics answers the monitoring token only.
    scraper = APIClient()
    scraper.credentials(HTTP_AUTHORIZATION=f"Bearer {os.environ['METRICS_BEARER_TOKEN']}")
    results = {}
    # The 10k case runs on a table of 10k rows, the 1M case after the table grew to 1M more.
    for label, integration, rows in (("10k", small, SMALL), ("1M", big, BIG)):
        fill(integration.pk, rows)
        url = f"/platform/integrations/{integration.pk}/recovery/queue"
        first = client.get(url, {"limit": 50}).json()
        deep_cursor = first["next_cursor"]
        for _ in range(20):  # walk 20 pages in, then measure the 21st
            deep_cursor = client.get(url, {"limit": 50, "cursor": deep_cursor}).json()[
                "next_cursor"
            ]
        results[label] = {
            "first": median_ms(client, url, {"limit": 50}),
            "dlq": median_ms(client, url, {"limit": 50, "status": "dlq"}),
            "deep": median_ms(client, url, {"limit": 50, "cursor": deep_cursor}),
        }
        print(
            f"{label:>3} rows: first page {results[label]['first']:.2f} ms, dlq page "
            f"{results[label]['dlq']:.2f} ms, page 21 {results[label]['deep']:.2f} ms (median)"
        )
        # Not part of the target: what an operator's other views cost at this size.
        scrape = median_ms(scraper, "/metrics", {}, repeats=5)
        inbox = median_ms(client, "/api/v1/failures", {}, repeats=5)
        print(f"{label:>3} rows: /metrics scrape {scrape:.1f} ms, failure inbox {inbox:.1f} ms")
    ratios = {k: results["1M"][k] / results["10k"][k] for k in results["1M"]}
    print(
        "queue list 1M/10k latency ratios: " + " ".join(f"{k}={v:.2f}" for k, v in ratios.items())
    )


if __name__ == "__main__":
    main()
