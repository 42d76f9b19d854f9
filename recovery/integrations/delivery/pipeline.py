"""Many deliveries in flight per worker process (issue: delivery at real-world latency).

Partners answer in 50 to 500 ms and some hang until the timeout, so a processor that waits
on each call delivers a few dozen items a second. Here the worker's own thread does what it
did before, the database work: it claims leases in batches, builds each signed request and
writes each outcome with its compare-and-set. The calls themselves run on an asyncio loop in
a second thread (aiohttp), up to INTEGRATION_DELIVERY_IN_FLIGHT at once, each integration
bounded by its own window and rate:

- the window starts at the integration's `max_in_flight`, halves on a 429 or a timeout (the
  partner is struggling; once per round of calls, as TCP does) and takes one back per
  WINDOW_GROWTH_SUCCESSES successes;
- `rate_per_second` spaces the calls' starts.

The loop thread never touches the database, so outcomes are written by the thread (and the
connection, and in tests the transaction) that claimed them. An item waits for its window
only while its lease can still cover the call: one whose lease would run out before the
call could end is not called at all (released for a later claim), so no item is ever called
by two workers while its lease lives. aiohttp was measured to keep 64 calls in flight at
the speed of a plain loop here; httpx's async client was not (docs/benchmarks.md,
delivery at latency).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp

from opsconsole.failures.retry import network_error_class
from opsconsole.outbound.guard import (
    KEPT_RESPONSE_HEADERS,
    SNAPSHOT_BODY_LIMIT,
    Destination,
    OutboundResult,
    checked_destination,
    elapsed_ms,
    refused_result,
)

WINDOW_GROWTH_SUCCESSES = 20
# A call starts only when its lease outlasts the call's timeout by this much (the outcome's
# write, and clocks that disagree a little).
LEASE_MARGIN_SECONDS = 3.0
# How long a destination's check (public address, pinned) is reused before it is made again.
DESTINATION_TTL_SECONDS = 30.0


@dataclass
class DeliveryCall:
    """One call for the loop: where, what, and until when its lease lets it start."""

    integration_id: int
    url: str
    headers: dict[str, str]
    content: bytes
    timeout_seconds: float
    lease_deadline: float  # time.monotonic()
    max_in_flight: int
    rate_per_second: float


def _settle(future: Future[MadeCall | None], task: asyncio.Task[MadeCall | None]) -> None:
    if task.cancelled():
        future.cancel()
    elif (error := task.exception()) is not None:
        future.set_exception(error)
    else:
        future.set_result(task.result())


@dataclass(frozen=True)
class MadeCall:
    result: OutboundResult
    started: float  # time.monotonic() when it left: calls end out of order


class IntegrationWindow:
    """One integration's calls in flight: an adaptive window (AIMD) and a start rate."""

    def __init__(self) -> None:
        self.limit = 1
        self.window = 1.0
        self.in_flight = 0
        self.successes = 0
        self.rate = 0.0
        self.next_start = 0.0
        self.decreased_at = 0.0
        self.changed = asyncio.Condition()

    def configure(self, *, max_in_flight: int, rate_per_second: float) -> None:
        limit = max(1, max_in_flight)
        if limit != self.limit:
            # A new limit (the operator changed it) restarts the window there.
            self.limit, self.window = limit, float(limit)
        self.rate = max(0.0, rate_per_second)

    async def acquire(self, deadline: float) -> bool:
        """Wait for room in the window and the rate's next start; False if `deadline`
        (monotonic) comes first."""
        async with self.changed:
            while self.in_flight >= int(self.window):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                try:
                    await asyncio.wait_for(self.changed.wait(), timeout=left)
                except TimeoutError:
                    return False
            self.in_flight += 1
        if self.rate:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + 1.0 / self.rate
            if start > now:
                await asyncio.sleep(start - now)
        return True

    async def release(self, *, started: float, backed_off: bool, succeeded: bool) -> None:
        """One call (started at `started`, monotonic) ended. As TCP does, one halving per
        trouble: a call that started before the last halving does not halve again (a burst
        of timeouts from calls sent together is one signal, not twenty)."""
        async with self.changed:
            self.in_flight -= 1
            if backed_off and started >= self.decreased_at:
                self.window = max(1.0, self.window / 2)
                self.decreased_at = time.monotonic()
                self.successes = 0
            elif succeeded:
                self.successes += 1
                if self.successes >= WINDOW_GROWTH_SUCCESSES:
                    self.successes = 0
                    self.window = min(float(self.limit), self.window + 1)
            self.changed.notify_all()


@dataclass
class DeliveryLoop:
    """The process's asyncio loop for delivery calls, in a daemon thread."""

    loop: asyncio.AbstractEventLoop
    session: aiohttp.ClientSession
    windows: dict[int, IntegrationWindow] = field(default_factory=dict)
    destinations: dict[str, tuple[float, Destination]] = field(default_factory=dict)

    def submit(self, calls: list[DeliveryCall]) -> list[Future[MadeCall | None]]:
        """Make `calls` on the loop (one wake-up of the loop for all of them); each future
        holds its call's result, or None when the call was not made because its lease
        would have run out first."""
        futures: list[Future[MadeCall | None]] = [Future() for _ in calls]

        def start() -> None:
            for call, future in zip(calls, futures, strict=True):
                task = self.loop.create_task(self._deliver(call))
                task.add_done_callback(partial(_settle, future))

        self.loop.call_soon_threadsafe(start)
        return futures

    async def _destination(self, url: str) -> Destination:
        """The checked, pinned destination of `url`, checked again after
        DESTINATION_TTL_SECONDS. The check may resolve the name, so it runs off the loop (a
        slow resolver stalls no call); a call goes to the address checked, whatever the name
        resolves to meanwhile."""
        now = time.monotonic()
        known = self.destinations.get(url)
        if known is not None and known[0] > now:
            return known[1]
        destination = await asyncio.get_running_loop().run_in_executor(
            None, checked_destination, url
        )
        if not destination.retryable:  # a name that did not resolve is asked again next time
            self.destinations[url] = (now + DESTINATION_TTL_SECONDS, destination)
        return destination

    def window(self, integration_id: int) -> IntegrationWindow:
        return self.windows.setdefault(integration_id, IntegrationWindow())

    async def _deliver(self, call: DeliveryCall) -> MadeCall | None:
        window = self.window(call.integration_id)
        window.configure(max_in_flight=call.max_in_flight, rate_per_second=call.rate_per_second)
        latest_start = call.lease_deadline - call.timeout_seconds - LEASE_MARGIN_SECONDS
        if not await window.acquire(latest_start):
            return None
        result: OutboundResult | None = None
        started = time.monotonic()
        try:
            if time.monotonic() > latest_start:
                return None
            result = await self._post(call)
            return MadeCall(result, started)
        finally:
            status = result.http_status if result is not None else None
            timed_out = result is not None and result.error_class.endswith("timeout")
            await window.release(
                started=started,
                backed_off=status == 429 or timed_out,
                succeeded=status is not None and 200 <= status < 300,
            )

    async def _post(self, call: DeliveryCall) -> OutboundResult:
        destination = await self._destination(call.url)
        if destination.refusal:
            return refused_result(destination.refusal, destination.error_class)
        headers = {"Content-Type": "application/json", **call.headers}
        if destination.host_header:
            headers["Host"] = destination.host_header
        options: dict[str, Any] = {}
        if destination.sni_hostname:
            options["server_hostname"] = destination.sni_hostname
        started = time.perf_counter()
        try:
            async with self.session.post(
                destination.url,
                data=call.content,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=call.timeout_seconds),
                allow_redirects=False,
                **options,
            ) as response:
                raw = await response.content.read(SNAPSHOT_BODY_LIMIT + 1)
                kept = {
                    name.lower(): value
                    for name, value in response.headers.items()
                    if name.lower() in KEPT_RESPONSE_HEADERS
                }
                return OutboundResult(
                    duration_ms=elapsed_ms(started),
                    http_status=response.status,
                    headers=kept,
                    body=raw[:SNAPSHOT_BODY_LIMIT].decode("utf-8", errors="replace"),
                    body_truncated=len(raw) > SNAPSHOT_BODY_LIMIT,
                )
        except Exception as exc:  # every transport failure becomes a classified result
            return OutboundResult(
                duration_ms=elapsed_ms(started),
                error_class=network_error_class(exc),
                error_detail=f"{type(exc).__name__}: {exc}"[:1000],
            )


_loops: dict[int, DeliveryLoop] = {}
_loops_lock = threading.Lock()


def forget_destinations() -> None:
    """Check every endpoint afresh on its next call: the outbound rules or the resolver
    changed (settings overridden, a test's stand-in resolver)."""
    with _loops_lock:
        running = list(_loops.values())
    for delivery in running:
        delivery.loop.call_soon_threadsafe(delivery.destinations.clear)


def delivery_loop() -> DeliveryLoop:
    """The process's delivery loop, started on first use (a forked worker gets its own)."""
    pid = os.getpid()
    with _loops_lock:
        running = _loops.get(pid)
        if running is None:
            running = _loops[pid] = _start_loop()
    return running


def _start_loop() -> DeliveryLoop:
    loop = asyncio.new_event_loop()
    ready: Future[aiohttp.ClientSession] = Future()

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def open_session() -> aiohttp.ClientSession:
            # No pool limit of its own: the in-flight cap and the windows bound the calls.
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60)
            return aiohttp.ClientSession(connector=connector, auto_decompress=False)

        ready.set_result(loop.run_until_complete(open_session()))
        loop.run_forever()

    threading.Thread(target=serve, name="delivery-loop", daemon=True).start()
    return DeliveryLoop(loop=loop, session=ready.result(timeout=10))
