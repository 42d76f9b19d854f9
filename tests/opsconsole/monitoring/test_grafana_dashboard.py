"""The incident guide's Grafana dashboard (deploy/grafana/incident-guide.json): the two
sections the guide names, and every query reading series the console's /metrics exports,
with the label values it selects, after the guide's workers have run on real data."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from bookings.models import Nudge
from bookings.nudges import LoyaltyNudgeDispatch, OnboardingNudges
from bookings.services.bundles import bundle_create
from bookings.workers import BundleGuardrailWorker, CatalogScheduler, FulfillmentProcessor
from payments.workers import HostedSessionRecoveryWorker
from recovery.reports.weekly_digest import WeeklyDigestWorker
from tests.bookings.factories import BookingFactory, ResourceFactory
from tests.opsconsole.factories import UserFactory
from tests.workers import run_worker

DASHBOARD = Path(settings.BASE_DIR) / "deploy" / "grafana" / "incident-guide.json"
SELECTOR = re.compile(r"\b([a-z_:][a-z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|=|!=)\s*"([^"]*)"')
FUNCTIONS = {"sum", "max", "count", "increase", "rate", "by", "or", "vector", "and"}


def sections() -> dict[str, list[dict]]:
    """Each row's title and the panels under it."""
    found: dict[str, list[dict]] = {}
    current = ""
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            found[current] = []
        else:
            found[current].append(panel)
    return found


def test_the_guide_s_sections_are_there():
    found = sections()
    assert list(found) == ["Loyalty Pipeline Health", "Scheduler Readiness"]
    loyalty = " ".join(t["expr"] for p in found["Loyalty Pipeline Health"] for t in p["targets"])
    for part in ("loyalty_nudge_dispatch", "onboarding_nudges", "bundle", "referral_thanks"):
        assert part in loyalty  # nudges, guardrails, referrals
    readiness = " ".join(t["expr"] for p in found["Scheduler Readiness"] for t in p["targets"])
    for worker in (
        "fulfillment_processor",
        "bundle_guardrail_worker",
        "catalog_scheduler",
        "weekly_digest_scheduler",
        "hosted_recovery_worker",
    ):
        assert worker in readiness


@pytest.mark.django_db
def test_every_query_selects_series_the_console_exports(client, settings):
    customer = UserFactory(username="dash", groups=["Booking client"])
    BookingFactory(customer=customer, resource=ResourceFactory(), paid=Decimal("20"))
    part = ResourceFactory(price=Decimal("10.00"), active=False)
    bundle_create(name="b", price=Decimal("9"), resource_ids=[part.pk], actor="t", reason="t")
    for worker in (
        FulfillmentProcessor,
        CatalogScheduler,
        BundleGuardrailWorker,
        LoyaltyNudgeDispatch,
        OnboardingNudges,
        WeeklyDigestWorker,
        HostedSessionRecoveryWorker,
    ):
        run_worker(worker)
    # An outcome of each nudge worker and of the guardrail, as the dashboard selects them.
    from opsconsole.models import WorkerStatus

    for name in ("loyalty_nudge_dispatch", "onboarding_nudges"):
        WorkerStatus.objects.filter(name=name).update(
            outcome_totals={"sent": 1, "retry_scheduled": 1, "parked": 1}
        )
    Nudge.objects.create(
        kind="referral_thanks", subject="referral:1", customer=customer, recipient="a@b.test"
    )
    settings.METRICS_BEARER_TOKEN = "scrape-token"
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").content.decode()
    samples = [s for family in text_string_to_metric_families(body) for s in family.samples]
    exported = {s.name for s in samples}
    queries = [t["expr"] for ps in sections().values() for p in ps for t in p["targets"]]
    assert len(queries) >= 12
    for query in queries:
        selected = {name for name, _ in SELECTOR.findall(query)}
        bare = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\b(?!\s*[({\"])", query))
        metrics = {n for n in selected | bare if n.startswith(("smplat_", "opsconsole_"))}
        assert metrics, query
        for name, matchers in SELECTOR.findall(query):
            assert name in exported, (query, name)
            rows = [s for s in samples if s.name == name]
            for label, op, value in MATCHER.findall(matchers):
                wanted = value.split("|") if op == "=~" else [value]
                for one in wanted:
                    assert any(s.labels.get(label) == one for s in rows), (query, label, one)
        assert metrics <= exported, (query, metrics - exported)
        assert not (selected & FUNCTIONS), query
