"""Delivery at real-world latency: 10,000 items against a local endpoint that answers every
POST after 100 ms, and a variant where 5% of the calls hang past the 10 s timeout.

The worker (the scheduled delivery task's worker, one process, its calls in flight on the
delivery loop, everything the product promises per item: lease, signature, attempt, audit,
rollup, circuit) against a plain aiohttp loop with 64 requests in flight on the same rows
and endpoint, which only posts each row's payload. The endpoint runs in its own process.
Prints both rates and the worker/loop ratio of each variant on the last line (target: the
worker at least 0.8x of the loop on the 100 ms endpoint).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time

import benchdb

ITEMS = int(os.environ.get("BENCH_LATENCY_ITEMS", "10000"))
IN_FLIGHT = 64
DELAY_SECONDS = 0.1
TIMEOUT_SECONDS = 10
HANG_EVERY = 20  # 5% of the calls, in the hanging variant


def serve(port: multiprocessing.Value, hang_every: int) -> None:
    from aiohttp import web

    calls = 0

    async def answer(request: web.Request) -> web.Response:
        nonlocal calls
        await request.read()
        calls += 1
        if hang_every and calls % hang_every == 0:
            await asyncio.sleep(TIMEOUT_SECONDS + 1)  # past the caller's timeout
        else:
            await asyncio.sleep(DELAY_SECONDS)
        return web.json_response({"ok": True})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port.value = site._server.sockets[0].getsockname()[1]
        await asyncio.Event().wait()

    asyncio.run(main())


def start_endpoint(hang_every: int) -> tuple[multiprocessing.Process, str]:
    port = multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=serve, args=(port, hang_every), daemon=True)
    process.start()
    while not port.value:
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port.value}/hook"


def seed(url: str) -> int:
    from django.db import connection

    from recovery.models import Integration

    integration, _ = Integration.objects.update_or_create(
        name="latency",
        defaults={"endpoint_url": url, "max_in_flight": IN_FLIGHT, "rate_per_second": 5000},
    )
    with connection.cursor() as cursor:
        for table in ("deliveryattempt", "deliveryrollup", "providercircuit", "recoveryitem"):
            cursor.execute(f"DELETE FROM recovery_{table}")
        cursor.execute(
            "INSERT INTO recovery_recoveryitem (integration_id, event_type, payload, status, "
            "attempt_count, max_attempts, replay_count, next_retry_at, lease_owner, "
            "failure_code, failure_fingerprint, failure_detail, request_snapshot, "
            "response_snapshot, event_id, ordering_key, request_id, traceparent, created_at, "
            "updated_at) SELECT %s, 'booking.confirmed', jsonb_build_object('booking_id', n), "
            "'pending', 0, 5, 0, now(), '', '', '', '', '{}', '{}', 'evt-' || n, '', '', '', "
            "now(), now() FROM generate_series(1, %s) AS n",
            [integration.pk, ITEMS],
        )
        cursor.execute("ANALYZE recovery_recoveryitem")
    return integration.pk


def plain_loop(url: str) -> float:
    """64 requests in flight over the same rows, nothing else; items per second."""
    import aiohttp
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT id, payload::text FROM recovery_recoveryitem").fetchall()

    async def run() -> None:
        gate = asyncio.Semaphore(IN_FLIGHT)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def post(item_id: int, body: str) -> None:
                async with gate:
                    try:
                        headers = {"Content-Type": "application/json"}
                        async with session.post(
                            url, data=body.encode(), headers=headers, timeout=timeout
                        ) as response:
                            await response.read()
                    except TimeoutError:
                        pass

            await asyncio.gather(*(post(item_id, body) for item_id, body in rows))

    started = time.perf_counter()
    asyncio.run(run())
    return len(rows) / (time.perf_counter() - started)


def worker_run() -> float:
    from django.conf import settings

    from recovery.models import RecoveryItem
    from recovery.workers import IntegrationDeliveryWorker

    # As the scheduled task runs it: its processors share the calls in flight.
    worker = IntegrationDeliveryWorker(
        batch_size=100, concurrency=settings.INTEGRATION_DELIVERY_CONCURRENCY
    )
    started = time.perf_counter()
    summary = worker.run_once(triggered_by="bench", drain_seconds=3600)
    elapsed = time.perf_counter() - started
    # Every item called; a retry whose jittered backoff fell inside the run is called again.
    assert summary.claimed >= ITEMS, summary.as_dict()
    assert not RecoveryItem.objects.filter(status="pending").exists()
    return summary.claimed / elapsed


def variant(label: str, hang_every: int) -> tuple[float, float]:
    endpoint, url = start_endpoint(hang_every)
    try:
        seed(url)
        loop_rate = plain_loop(url)
        endpoint.terminate()
        endpoint, url = start_endpoint(hang_every)  # the same call count for the worker
        seed(url)
        worker_rate = worker_run()
    finally:
        endpoint.terminate()
    print(
        f"{label}: worker {worker_rate:.0f} items/s, plain aiohttp loop ({IN_FLIGHT} in flight) "
        f"{loop_rate:.0f} items/s, ratio {worker_rate / loop_rate:.2f}"
    )
    return worker_rate, loop_rate


def main() -> None:
    os.environ.setdefault("INTEGRATION_HTTP_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS))
    os.environ.setdefault("INTEGRATION_DELIVERY_IN_FLIGHT", str(IN_FLIGHT))
    # A timed-out call's retry falls after the run, so both sides make the same calls.
    os.environ.setdefault("INTEGRATION_BACKOFF_BASE_SECONDS", "3600")
    benchdb.setup("latency")
    steady = variant("100 ms endpoint", 0)
    hanging = variant(f"100 ms, 1 in {HANG_EVERY} hanging past the timeout", HANG_EVERY)
    print(
        f"delivery at latency worker/loop: 100ms {steady[0] / steady[1]:.2f} "
        f"({steady[0]:.0f} vs {steady[1]:.0f} items/s), 5% hanging "
        f"{hanging[0] / hanging[1]:.2f} ({hanging[0]:.0f} vs {hanging[1]:.0f} items/s)"
    )


if __name__ == "__main__":
    main()
