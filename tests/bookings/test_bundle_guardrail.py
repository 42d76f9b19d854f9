"""The bundle guardrail worker (docs/runbooks/incident-response.md): a bundle whose part is
closed or repriced stops selling, with a critical alert and an inbox entry, until an
operator fixes or overrides it; an override lasts only while the parts stay as they were."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.models import Bundle, Resource
from bookings.services.bundles import (
    BundleNotStopped,
    bundle_accept_part_prices,
    bundle_create,
    bundle_override,
)
from bookings.workers import BundleGuardrailWorker
from opsconsole.models import Alert, AuditEvent
from recovery.inbox.groups import failure_groups
from tests.bookings.factories import ResourceFactory
from tests.helpers import run_concurrently, token_client
from tests.opsconsole.factories import UserFactory
from tests.workers import run_worker


def a_bundle(*prices: str) -> tuple[Bundle, list[Resource]]:
    parts = [ResourceFactory(price=Decimal(price)) for price in prices]
    bundle = bundle_create(
        name="court + sauna",
        price=Decimal("40.00"),
        resource_ids=[p.pk for p in parts],
        actor="merchandising",
        reason="winter offer",
    )
    return bundle, parts


def next_round() -> timezone.datetime:
    return timezone.now() + timedelta(minutes=6)


@pytest.mark.django_db
def test_a_repriced_part_stops_the_bundle_with_an_alert_until_its_prices_are_accepted():
    bundle, (_court, sauna) = a_bundle("30.00", "15.00")
    assert run_worker(BundleGuardrailWorker).outcomes == {"selling": 1}
    Resource.objects.filter(pk=sauna.pk).update(price=Decimal("18.00"))
    assert run_worker(BundleGuardrailWorker, at=next_round()).outcomes == {"stopped": 1}
    bundle.refresh_from_db()
    assert (bundle.status, bundle.stop_code) == ("STOPPED", "PART_REPRICED")
    assert "18.00" in bundle.stop_reason and "15.00" in bundle.stop_reason
    alert = Alert.objects.get(kind="bundle-stopped", object_id=str(bundle.pk))
    assert alert.severity == "critical"
    [group] = [g for g in failure_groups() if g.source == "bundle"]
    assert group.failure_code == "PART_REPRICED"
    # Checked again, still broken: one alert, not one a round.
    run_worker(BundleGuardrailWorker, at=next_round() + timedelta(minutes=6))
    assert Alert.objects.filter(kind="bundle-stopped").count() == 1

    accepted_at = timezone.now()
    bundle_accept_part_prices(
        bundle_id=bundle.pk, actor="merch", reason="new sauna price", price=Decimal("43.00")
    )
    bundle.refresh_from_db()
    assert (bundle.status, bundle.price) == ("SELLING", Decimal("43.00"))
    assert accepted_at <= bundle.checked_at <= timezone.now()  # checked at once
    assert AuditEvent.objects.get(event="booking.bundle.repriced").after_state["price"] == "43.00"
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is not None
    assert not [g for g in failure_groups() if g.source == "bundle"]


@pytest.mark.django_db
def test_a_closed_part_stops_it_and_reopening_the_part_resumes_it():
    bundle, (court, _sauna) = a_bundle("30.00", "15.00")
    Resource.objects.filter(pk=court.pk).update(active=False)
    assert run_worker(BundleGuardrailWorker).outcomes == {"stopped": 1}
    Resource.objects.filter(pk=court.pk).update(active=True)
    assert run_worker(BundleGuardrailWorker, at=next_round()).outcomes == {"resumed": 1}
    bundle.refresh_from_db()
    assert (bundle.status, bundle.stop_code) == ("SELLING", "")
    assert AuditEvent.objects.filter(event="booking.bundle.resumed").exists()


@pytest.mark.django_db
def test_an_override_sells_until_a_part_changes_again():
    bundle, (court, sauna) = a_bundle("30.00", "15.00")
    with pytest.raises(BundleNotStopped):
        bundle_override(bundle_id=bundle.pk, actor="ops", reason="nothing to override")
    Resource.objects.filter(pk=sauna.pk).update(price=Decimal("18.00"))
    run_worker(BundleGuardrailWorker)
    bundle_override(bundle_id=bundle.pk, actor="ops", reason="price error is ours, honour it")
    assert AuditEvent.objects.get(event="booking.bundle.overridden").reason == (
        "price error is ours, honour it"
    )
    assert run_worker(BundleGuardrailWorker, at=next_round()).outcomes == {"overridden": 1}
    bundle.refresh_from_db()
    assert bundle.status == "SELLING"
    Resource.objects.filter(pk=court.pk).update(active=False)
    later = next_round() + timedelta(minutes=6)
    assert run_worker(BundleGuardrailWorker, at=later).outcomes == {"stopped": 1}
    bundle.refresh_from_db()
    assert (bundle.status, bundle.override_reason) == ("STOPPED", "")


@pytest.mark.django_db(transaction=True)
def test_concurrent_guardrails_check_each_bundle_once_a_round():
    bundles = []
    for n in range(8):
        part = ResourceFactory(price=Decimal("10.00"), active=n % 2 == 0)
        bundles.append(
            bundle_create(
                name=f"bundle-{n}",
                price=Decimal("9.00"),
                resource_ids=[part.pk],
                actor="merch",
                reason="set",
            )
        )
    summaries = run_concurrently(
        lambda n: BundleGuardrailWorker(batch_size=2).run_once(
            triggered_by=f"race-{n}", drain_seconds=3
        ),
        3,
    )
    assert sum(s.claimed for s in summaries) == 8
    assert Bundle.objects.filter(status="STOPPED").count() == 4
    assert Alert.objects.filter(kind="bundle-stopped").count() == 4


@pytest.mark.django_db
def test_a_stopped_bundle_is_not_on_sale_until_it_is_fixed():
    bundle, (_court, sauna) = a_bundle("30.00", "15.00")
    client = token_client(UserFactory(username="shopper", groups=["Booking client"]))

    def on_sale() -> list[dict]:
        response = client.get("/api/v1/bookings/bundles")
        assert response.status_code == 200
        return response.json()["items"]

    [listed] = on_sale()
    assert (listed["name"], listed["price"]) == ("court + sauna", "40.00")
    assert [part["resource_id"] for part in listed["parts"]] == sorted(
        part.resource_id for part in bundle.parts.all()
    )
    Resource.objects.filter(pk=sauna.pk).update(price=Decimal("18.00"))
    run_worker(BundleGuardrailWorker)
    assert on_sale() == []
    bundle_override(bundle_id=bundle.pk, actor="ops", reason="honour the old price")
    assert [b["id"] for b in on_sale()] == [bundle.pk]


@pytest.mark.django_db
def test_a_new_finding_on_a_stopped_bundle_replaces_its_alert():
    _bundle, (court, sauna) = a_bundle("30.00", "15.00")
    Resource.objects.filter(pk=sauna.pk).update(price=Decimal("18.00"))
    run_worker(BundleGuardrailWorker)
    first = Alert.objects.get(kind="bundle-stopped")
    Resource.objects.filter(pk=court.pk).update(active=False)
    assert run_worker(BundleGuardrailWorker, at=next_round()).outcomes == {"stopped": 1}
    first.refresh_from_db()
    assert first.acknowledged_at is not None  # settled: its finding changed
    [current] = Alert.objects.filter(kind="bundle-stopped", acknowledged_at__isnull=True)
    assert "is closed" in current.message and "costs 18.00" in current.message
