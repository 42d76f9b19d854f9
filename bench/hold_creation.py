"""Hold creation through the service (locked check, exclusion constraint, audit row) against
a raw INSERT into the same table. Prints the per-hold time ratio last."""

from __future__ import annotations

import os
from datetime import timedelta

import benchdb

HOLDS = int(os.environ.get("BENCH_HOLDS", "500"))


def main() -> None:
    benchdb.setup("holds")
    import psycopg
    from django.contrib.auth.models import User
    from django.utils import timezone

    from bookings.models import BookingHold, Resource
    from bookings.services import booking_hold_create
    from tests.opsconsole.factories import UserFactory

    # One client per hold, as in life: a client holds at most 3 slots at once, so the
    # service's per-client cap check runs on every hold, as it does in production.
    UserFactory(username="bench-holder")
    holders = User.objects.bulk_create([User(username=f"bench-client-{n}") for n in range(HOLDS)])
    service_resource = Resource.objects.create(name="service")
    raw_resource = Resource.objects.create(name="raw")
    base = (timezone.now() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)

    def via_service() -> None:
        for n in range(HOLDS):
            start = base + timedelta(hours=n)
            booking_hold_create(
                resource_id=service_resource.pk,
                start_time=start,
                end_time=start + timedelta(hours=1),
                holder=holders[n],
            )

    def via_raw_insert() -> None:
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            for n in range(HOLDS):
                start = base + timedelta(hours=n)
                conn.execute(
                    """INSERT INTO bookings_bookinghold (resource_id, holder_id, start_time,
                       end_time, status, occupies_slot, expires_at, next_check_at, lease_owner,
                       created_at) VALUES (%s, %s, %s, %s, 'ACTIVE', true, %s, %s, '', now())""",
                    [
                        raw_resource.pk,
                        holders[n].pk,
                        start,
                        start + timedelta(hours=1),
                        timezone.now(),
                        timezone.now(),
                    ],
                )

    service_seconds = benchdb.timed(via_service)
    raw_seconds = benchdb.timed(via_raw_insert)
    assert BookingHold.objects.filter(resource=service_resource).count() == HOLDS
    service_ms, raw_ms = service_seconds * 1000 / HOLDS, raw_seconds * 1000 / HOLDS
    print(f"{HOLDS} holds: service {service_ms:.2f} ms/hold, raw INSERT {raw_ms:.2f} ms/hold")
    print(f"hold creation service/raw time ratio: {service_ms / raw_ms:.2f}")


if __name__ == "__main__":
    main()
