"""From a business event to the partner's receipt, as production runs it.

The console: the Procfile's processes (gunicorn taking events on the ingestion API,
`manage.py qcluster`, the listening delivery process), a partner that records each arrival
and answers after 20 ms, and a sender posting one event per request at 20/s, 200/s and 500/s
(each stamped with its sending time). The floor, on the same machine in the same run: the
sender writes each event to a table with a NOTIFY in the same statement, and one process
LISTENs and posts each event to the same partner with aiohttp. Beside it, the same floor
taking events over HTTP: a small aiohttp intake writes each posted event with its NOTIFY.

Prints p50, p95, p99 and max of arrival minus sending, in milliseconds, for all three, and
the console's p99 against each floor's (targets: p99 at most 25 ms at 20/s and 50 ms at
200/s, and within 3x of the floor's p99).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchdb

ROOT = Path(__file__).resolve().parents[1]
PARTNER_SECONDS = 0.02
# (events per second, seconds sent); each rate is first sent for WARM_UP_SECONDS unmeasured.
RATES = [
    (rate, seconds)
    for rate, seconds in [(20, 10.0), (200, 8.0), (500, 5.0)]
    if str(rate) in os.environ.get("BENCH_E2E_RATES", "20,200,500").split(",")
]
# Long-running processes are measured warm: each thread of each process has opened its
# database connection and prepared its statements, at the concurrency the rate brings.
WARM_UP_SECONDS = 2.0
# The partner and the floor start fresh (not forked from this Django-loaded process), so
# neither carries a heap it does not use into its garbage collections.
SPAWN = multiprocessing.get_context("spawn")
PROCESSES = tuple(os.environ.get("BENCH_E2E_PROCESSES", "web,worker,delivery").split(","))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def partner(port: int) -> None:
    """Record each event's arrival (before answering) against its sending time."""
    from aiohttp import web

    arrivals: list[float] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.json()
        arrivals.append(time.time() - body["sent_at"])
        await asyncio.sleep(PARTNER_SECONDS)
        return web.json_response({"ok": True})

    async def take(request: web.Request) -> web.Response:
        taken = list(arrivals)
        arrivals.clear()
        return web.json_response(taken)

    app = web.Application()
    app.router.add_post("/hook", receive)
    app.router.add_get("/arrivals", take)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def floor_listener(database_url: str, hook: str) -> None:
    """The floor: LISTEN, take what was written, post each with aiohttp (64 in flight)."""
    import aiohttp
    import psycopg

    async def main() -> None:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        await conn.execute("LISTEN floor_events")
        gate = asyncio.Semaphore(64)
        async with aiohttp.ClientSession() as session:

            async def post(body: str) -> None:
                async with gate:
                    headers = {"Content-Type": "application/json"}
                    async with session.post(hook, data=body, headers=headers) as response:
                        await response.read()

            while True:
                # A query waits while the connection is handing out notifications: take one
                # (those arriving meanwhile wait for the next round), then the rows.
                async for _ in conn.notifies(stop_after=1):
                    pass
                cursor = await conn.execute("DELETE FROM floor_event RETURNING payload::text")
                for (body,) in await cursor.fetchall():
                    asyncio.get_running_loop().create_task(post(body))

    asyncio.run(main())


def floor_intake(database_url: str, port: int) -> None:
    """The floor with an HTTP hop: take each event in a request and write its payload with a
    NOTIFY in one statement, then answer (what any ingestion over HTTP must do at least)."""
    import psycopg
    from aiohttp import web

    async def main() -> None:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)

        async def take(request: web.Request) -> web.Response:
            body = await request.json()
            await conn.execute(
                "WITH added AS (INSERT INTO floor_event (payload) VALUES (%s)) "
                "SELECT pg_notify('floor_events', '')",
                [json.dumps(body["payload"])],
            )
            return web.json_response({"ok": True}, status=202)

        app = web.Application()
        app.router.add_post("/events", take)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


async def paced(rate: int, seconds: float, send) -> int:  # type: ignore[no-untyped-def]
    """Call `send(n)` `rate` times a second for `seconds`, each on its own task, never
    waiting for one to finish before starting the next (an open loop, as events come)."""
    count = int(rate * seconds)
    started = time.perf_counter()
    tasks = []
    for n in range(count):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(n)))
    await asyncio.gather(*tasks)
    return count


def collect(partner_url: str, expected: int, wait_seconds: float = 60.0) -> list[float]:
    """The arrivals since the last collection, once `expected` came (or the wait ran out)."""
    import httpx

    got: list[float] = []
    deadline = time.monotonic() + wait_seconds
    while len(got) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        got += httpx.get(f"{partner_url}/arrivals").json()
    return got


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ms[-1]}


def console_sender(
    base: str, token: str, integration_id: int, rate: int, seconds: float
) -> tuple[int, list[float]]:
    """Events sent to the ingestion API, and how long it took to answer each."""
    url = f"{base}/platform/integrations/{integration_id}/events"
    return http_sender(url, {"Authorization": f"Token {token}"}, rate, seconds)


def http_sender(
    url: str, headers: dict[str, str], rate: int, seconds: float
) -> tuple[int, list[float]]:
    """Events posted one per request, and how long each answer took."""
    import aiohttp

    failures = 0
    answered: list[float] = []

    async def main() -> int:
        nonlocal failures
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def send(n: int) -> None:
                nonlocal failures
                sent_at = time.time()
                body = {
                    "event_type": "booking.confirmed",
                    "event_id": f"evt-{rate}-{time.time_ns()}-{n}",
                    "payload": {"n": n, "sent_at": sent_at},
                }
                async with session.post(url, json=body) as response:
                    await response.read()
                    answered.append(time.time() - sent_at)
                    if response.status >= 300:
                        failures += 1

            return await paced(rate, seconds, send)

    sent = asyncio.run(main())
    if failures:
        raise SystemExit(f"{failures} of {sent} events were refused by {url}")
    return sent, answered


def floor_sender(database_url: str, rate: int, seconds: float) -> int:
    import psycopg

    async def main() -> int:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)

        async def send(n: int) -> None:
            payload = json.dumps({"n": n, "sent_at": time.time()})
            await conn.execute(
                "WITH added AS (INSERT INTO floor_event (payload) VALUES (%s)) "
                "SELECT pg_notify('floor_events', '')",
                [payload],
            )

        try:
            return await paced(rate, seconds, send)
        finally:
            await conn.close()

    return asyncio.run(main())


def start_procfile(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    lines = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    return [
        subprocess.Popen(
            ["sh", "-c", lines[name].strip()],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )
        for name in PROCESSES
    ]


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def wait_for_http(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} never answered")


def show(label: str, figures: dict[str, float]) -> str:
    return f"{label}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in figures.items())


def main() -> None:
    # A terminated run still stops the processes it started (they have sessions of their own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    benchdb.setup("e2e_latency")
    from django.contrib.auth.models import Group
    from knox.models import AuthToken

    from recovery import services
    from tests.opsconsole.factories import UserFactory

    partner_port, web_port = free_port(), free_port()
    partner_url = f"http://127.0.0.1:{partner_port}"
    partner_process = SPAWN.Process(target=partner, args=(partner_port,), daemon=True)
    partner_process.start()
    wait_for_http(f"{partner_url}/arrivals")
    integration = services.integration_create(
        name="e2e",
        endpoint_url=f"{partner_url}/hook",
        actor="bench",
        max_in_flight=64,
        rate_per_second=2000,  # the partner takes any rate: its limit is not measured here
    )
    producer = UserFactory(username="producer")
    producer.groups.add(Group.objects.get(name="Event producer"))
    _, token = AuthToken.objects.create(producer)
    database_url = os.environ["DATABASE_URL"]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "OPSCONSOLE_PORT": str(web_port),
        "OPSCONSOLE_READ_ENV_FILE": "false",
        # As docs/deployment.md runs the web processes: each keeps its database connection.
        "DATABASE_CONN_MAX_AGE": "60",
        "API_THROTTLE_INGEST": "1000000/min",
        "API_THROTTLE_USER": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }
    results: dict[str, dict[int, dict[str, float]]] = {"console": {}, "floor": {}, "http": {}}
    # The sender (this process) is measured as little as it can be: what Django loaded
    # here is out of its collections' walk, as in the console's own processes.
    gc.collect()
    gc.freeze()
    processes = start_procfile(env)
    try:
        base = f"http://127.0.0.1:{web_port}"
        wait_for_http(f"{base}/api/v1/health/livez")
        time.sleep(3)  # the listener connects and reports
        for rate, seconds in RATES:
            warm, _ = console_sender(base, token, integration.pk, rate, WARM_UP_SECONDS)
            collect(partner_url, warm)
            sent, answered = console_sender(base, token, integration.pk, rate, seconds)
            results["console"][rate] = percentiles(collect(partner_url, sent))
            print(show(f"console {rate}/s ({sent} events)", results["console"][rate]), flush=True)
            print(show("  of which the ingestion API's answer", percentiles(answered)), flush=True)
    finally:
        stop_all(processes)

    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE floor_event (id bigserial PRIMARY KEY, payload jsonb)")
    floor = SPAWN.Process(
        target=floor_listener, args=(database_url, f"{partner_url}/hook"), daemon=True
    )
    floor.start()
    time.sleep(1)
    try:
        for rate, seconds in RATES:
            collect(partner_url, floor_sender(database_url, rate, WARM_UP_SECONDS))
            sent = floor_sender(database_url, rate, seconds)
            results["floor"][rate] = percentiles(collect(partner_url, sent))
            print(show(f"floor   {rate}/s ({sent} events)", results["floor"][rate]), flush=True)
        intake_port = free_port()
        intake = SPAWN.Process(target=floor_intake, args=(database_url, intake_port), daemon=True)
        intake.start()
        intake_url = f"http://127.0.0.1:{intake_port}/events"
        wait_for_port(intake_port)
        try:
            for rate, seconds in RATES:
                collect(partner_url, http_sender(intake_url, {}, rate, WARM_UP_SECONDS)[0])
                sent, _ = http_sender(intake_url, {}, rate, seconds)
                results["http"][rate] = percentiles(collect(partner_url, sent))
                label = f"floor with an HTTP hop {rate}/s ({sent} events)"
                print(show(label, results["http"][rate]), flush=True)
        finally:
            intake.terminate()
    finally:
        floor.terminate()
        partner_process.terminate()

    for floor_name, label in [
        ("floor", "LISTEN+aiohttp floor"),
        ("http", "the same floor taking events over HTTP"),
    ]:
        cells = []
        for rate, _ in RATES:
            console, raw = results["console"][rate], results[floor_name][rate]
            cells.append(
                f"{rate}/s p99 {console['p99']:.1f} vs {raw['p99']:.1f} ms "
                f"(x{console['p99'] / raw['p99']:.2f})"
            )
        print(f"event to partner, console vs {label}: " + ", ".join(cells))
    print(f"(processes: {', '.join(shlex.quote(p) for p in PROCESSES)} from the Procfile)")


if __name__ == "__main__":
    main()
