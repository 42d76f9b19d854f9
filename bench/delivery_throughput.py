"""Integration delivery worker throughput against a raw-SQL SKIP LOCKED loop.

Both sides claim due rows with FOR UPDATE SKIP LOCKED, POST each one to the same no-op local
endpoint, and mark it done; the raw loop does only that, the worker does everything the
product promises (lease, audit row, attempt log, snapshots, heartbeat, circuit). The worker
side runs the scheduled task itself, so it has the task's delivery processors per process
(INTEGRATION_DELIVERY_CONCURRENCY; set it to 1 to compare one loop with one loop). Batches
of 1, 10 and 100, with 1, 2 and 4 processes. Prints worker/raw throughput ratios last.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import benchdb

ITEMS = int(os.environ.get("BENCH_DELIVERY_ITEMS", "1000"))
# BENCH_BATCHES=1,10 BENCH_PROCESSES=1 narrows a run while investigating.
BATCHES = tuple(int(n) for n in os.environ.get("BENCH_BATCHES", "1,10,100").split(","))
PROCESSES = tuple(int(n) for n in os.environ.get("BENCH_PROCESSES", "1,2,4").split(","))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


class NoOp(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response and no Nagle delay: the endpoint must not be the bottleneck.
    disable_nagle_algorithm = True
    wbufsize = 65536

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


class Endpoint(ThreadingHTTPServer):
    # Callers keep many calls in flight: a backlog of 5 would refuse their connections.
    request_queue_size = 1024
    daemon_threads = True


def start_endpoint() -> str:
    server = Endpoint(("127.0.0.1", 0), NoOp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


def seed(url: str) -> None:
    from django.db import connection

    from recovery.models import Integration

    # The partner's limits are set out of the way: this measures the worker, not its pacing
    # (the default 50 calls a second per integration would be the whole result).
    integration, _ = Integration.objects.update_or_create(
        name="bench",
        defaults={"endpoint_url": url, "max_in_flight": 64, "rate_per_second": 100_000},
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM recovery_deliveryattempt")
        cursor.execute("DELETE FROM recovery_recoveryitem")
        cursor.execute("DELETE FROM recovery_providercircuit")
        cursor.execute(
            """INSERT INTO recovery_recoveryitem (integration_id, event_type, payload, status,
               attempt_count, max_attempts, replay_count, next_retry_at, lease_owner,
               failure_code, failure_detail, request_snapshot, response_snapshot, request_id,
               traceparent, created_at, updated_at)
               SELECT %s, 'bench.event', jsonb_build_object('n', n), 'pending', 0, 5, 0,
                      now() - interval '1 minute', '', '', '', '{}', '{}', '', '', now(), now()
               FROM generate_series(1, %s) AS n""",
            [integration.pk, ITEMS],
        )


def worker_loop(batch: int) -> None:
    import django
    from django.db import connections

    django.setup()
    from django.conf import settings

    from recovery.tasks import run_integration_delivery_worker

    # Exactly what the schedule runs (a draining run with the configured processors), at
    # this batch size; a process keeps waking it while work is due, as the schedule would.
    settings.WORKER_BATCH_SIZE = batch
    while run_integration_delivery_worker(triggered_by="bench")["claimed"]:
        pass
    connections.close_all()


def raw_loop(batch: int, url: str) -> None:
    import httpx
    import psycopg

    client = httpx.Client()  # pooled, like the product's shared outbound client
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        while True:
            with conn.transaction():
                rows = conn.execute(
                    """SELECT id, payload FROM recovery_recoveryitem
                       WHERE status = 'pending' AND next_retry_at <= now()
                       ORDER BY next_retry_at FOR UPDATE SKIP LOCKED LIMIT %s""",
                    [batch],
                ).fetchall()
                if not rows:
                    return
                conn.execute(
                    "UPDATE recovery_recoveryitem SET lease_owner = 'raw' WHERE id = ANY(%s)",
                    [[r[0] for r in rows]],
                )
            for item_id, payload in rows:
                client.post(url, json=payload, timeout=10)
                conn.execute(
                    "UPDATE recovery_recoveryitem SET status = 'succeeded', lease_owner = '' "
                    "WHERE id = %s AND lease_owner = 'raw'",
                    [item_id],
                )


def drain(target, args, processes: int) -> float:
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    workers = [context.Process(target=target, args=args) for _ in range(processes)]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
        assert process.exitcode == 0, f"{target.__name__} exited {process.exitcode}"
    return time.perf_counter() - started


def main() -> None:
    benchdb.setup("delivery")
    from django.db import connections

    from recovery.models import RecoveryItem

    url = start_endpoint()
    ratios = []
    from django.conf import settings

    print(
        f"{ITEMS} items per run, best of {REPEATS}; items/s (worker vs raw SKIP LOCKED loop, "
        f"same endpoint); each worker process runs "
        f"{settings.INTEGRATION_DELIVERY_CONCURRENCY} delivery processor(s) "
        "(INTEGRATION_DELIVERY_CONCURRENCY), the raw loop one"
    )
    for processes in PROCESSES:
        for batch in BATCHES:
            # Best of REPEATS for each side, interleaved so drift on a shared machine hits both.
            worker_seconds = raw_seconds = float("inf")
            for _ in range(REPEATS):
                seed(url)
                connections.close_all()
                worker_seconds = min(worker_seconds, drain(worker_loop, (batch,), processes))
                assert RecoveryItem.objects.filter(status="succeeded").count() == ITEMS
                seed(url)
                connections.close_all()
                raw_seconds = min(raw_seconds, drain(raw_loop, (batch, url), processes))
                assert RecoveryItem.objects.filter(status="succeeded").count() == ITEMS
            worker_rate, raw_rate = ITEMS / worker_seconds, ITEMS / raw_seconds
            ratio = worker_rate / raw_rate
            ratios.append(f"p{processes}/b{batch}={ratio:.2f}")
            print(
                f"processes={processes} batch={batch:>3}: worker {worker_rate:7.1f}/s  "
                f"raw {raw_rate:7.1f}/s  worker/raw {ratio:.2f}"
            )
    print("delivery worker/raw throughput ratios: " + " ".join(ratios))


if __name__ == "__main__":
    main()
