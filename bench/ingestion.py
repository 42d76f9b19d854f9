"""Event ingestion: 100,000 events through the batch API in requests of 100 (in-process
client, one producer token, each event with its own event id, so the 7-day dedup runs),
against psycopg inserting the same rows 100 at a time with one multi-row INSERT each.
Prints the per-event time ratio last (target: within 3x)."""

from __future__ import annotations

import json
import os

import benchdb

EVENTS = int(os.environ.get("BENCH_INGEST_EVENTS", "100000"))
BATCH = 100


def main() -> None:
    # The producer sends 1,000 requests in seconds: its rate limits are raised, not removed
    # (the throttles still count every request). Connections persist between requests, as
    # a deployment runs them (DATABASE_CONN_MAX_AGE), since the raw side keeps one too.
    os.environ.setdefault("API_THROTTLE_USER", "1000000/min")
    os.environ.setdefault("API_THROTTLE_INGEST", "1000000/min")
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")
    benchdb.setup("ingestion")
    import psycopg
    from rest_framework.test import APIClient

    from recovery import services
    from recovery.models import RecoveryItem
    from tests.helpers import token_client
    from tests.opsconsole.factories import UserFactory

    producer = UserFactory(username="bench-producer", groups=["Event producer"])
    api_target = services.integration_create(
        name="api", endpoint_url="https://partner.example.com/in", actor="bench"
    )
    raw_target = services.integration_create(
        name="raw", endpoint_url="https://partner.example.com/in", actor="bench"
    )
    client: APIClient = token_client(producer)
    url = f"/platform/integrations/{api_target.pk}/events/batch"

    def event(n: int) -> dict:
        return {
            "event_type": "booking.confirmed",
            "event_id": f"evt-{n}",
            "payload": {"booking_id": n, "resource_id": n % 40, "status": "confirmed"},
        }

    def via_api() -> None:
        for start in range(0, EVENTS, BATCH):
            body = {"events": [event(n) for n in range(start, start + BATCH)]}
            response = client.post(url, body, format="json")
            assert response.status_code == 202, response.content[:300]

    def via_raw_insert() -> None:
        row = (
            "(%s, 'booking.confirmed', %s, 'pending', 0, 5, 0, now(), '', '', '', '', '{}', "
            "'{}', %s, '', '', '', now(), now())"
        )
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            for start in range(0, EVENTS, BATCH):
                values, params = [], []
                for n in range(start, start + BATCH):
                    item = event(n)
                    values.append(row)
                    params += [raw_target.pk, json.dumps(item["payload"]), item["event_id"]]
                conn.execute(
                    "INSERT INTO recovery_recoveryitem (integration_id, event_type, payload, "
                    "status, attempt_count, max_attempts, replay_count, next_retry_at, "
                    "lease_owner, failure_code, failure_fingerprint, failure_detail, "
                    "request_snapshot, response_snapshot, event_id, ordering_key, request_id, "
                    "traceparent, created_at, updated_at) VALUES " + ", ".join(values),
                    params,
                )

    api_seconds = benchdb.timed(via_api)
    raw_seconds = benchdb.timed(via_raw_insert)
    assert RecoveryItem.objects.filter(integration=api_target).count() == EVENTS
    assert RecoveryItem.objects.filter(integration=raw_target).count() == EVENTS
    api_us, raw_us = api_seconds * 1e6 / EVENTS, raw_seconds * 1e6 / EVENTS
    print(
        f"{EVENTS} events in requests of {BATCH}: API {api_us:.0f} us/event, "
        f"raw multi-row INSERT {raw_us:.0f} us/event"
    )
    print(f"ingestion API/raw time ratio: {api_us / raw_us:.2f}")


if __name__ == "__main__":
    main()
