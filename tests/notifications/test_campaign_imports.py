"""Campaign target lists (issue #33): at most CAMPAIGN_MAX_TARGETS_PER_REQUEST a request;
above CAMPAIGN_INLINE_TARGETS they are staged and imported after the request by the target
importer, in batches, once however often it runs or dies; the progress shows in the API and
on the admin page, and the campaign starts only once its list is in. Campaign creation has
a rate of its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.campaign_import import _import_batch
from notifications.models import Campaign, CampaignTarget, CampaignTargetImport
from notifications.workers import CampaignTargetImporter
from opsconsole.models import AuditEvent
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory
from tests.workers import run_as, run_queued_tasks, run_worker

URL = "/api/v1/campaigns"
IMPORTER = "campaign_target_importer"  # its wakes queue the workers' entry point with this name
PHONES = [f"+3519100{n:05d}" for n in range(25)]


@pytest.fixture
def producer_client(db):
    return token_client(UserFactory(username="shop", groups=["Event producer"]))


@pytest.fixture
def small_limits(settings):
    settings.CAMPAIGN_MAX_TARGETS_PER_REQUEST = 30
    settings.CAMPAIGN_INLINE_TARGETS = 10
    settings.CAMPAIGN_IMPORT_BATCH_SIZE = 7
    settings.WAKE_COALESCE_MS = 0  # each wake goes to the queue at once


def campaign_body(phones: list[str]) -> dict:
    return {"name": "Spring", "template": "promo", "phones": phones}


def admin_page(admin_client, campaign_id: int) -> str:
    return admin_client.get(f"/admin/notifications/campaign/{campaign_id}/change/").content.decode()


@pytest.mark.django_db
def test_a_request_above_the_cap_is_a_400_and_creates_nothing(producer_client, small_limits):
    response = producer_client.post(URL, campaign_body([*PHONES, *PHONES[:6]]), format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "NTF-400-INVALID-PAYLOAD"
    assert error["details"]["fields"]["phones"] == ["At most 30 targets in a request."]
    assert not Campaign.objects.exists()
    assert not CampaignTarget.objects.exists()


@pytest.mark.django_db
def test_a_large_list_is_imported_after_the_request_and_the_campaign_waits_for_it(
    producer_client,
    operator_client,
    admin_client,
    small_limits,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        created = producer_client.post(URL, campaign_body(PHONES), format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["import_state"], body["targets_imported"], body["targets_total"]) == (
        "importing",
        0,
        25,
    )
    campaign_id = body["id"]
    assert not CampaignTarget.objects.exists()  # the request added none of them
    assert "imported 0 of 25 (importing)" in admin_page(admin_client, campaign_id)

    early = operator_client.post(f"{URL}/{campaign_id}/start", {}, format="json")
    assert early.status_code == 409
    assert error_of(early)["code"] == "NTF-409-CAMPAIGN-STATE-CONFLICT"
    assert error_of(early)["details"]["import_state"] == "importing"
    with pytest.raises(IntegrityError), transaction.atomic():
        # The database refuses a sending campaign whose list is not in, whoever asks.
        Campaign.objects.filter(pk=campaign_id).update(status="running")

    (run,) = run_queued_tasks(IMPORTER)
    assert run["outcomes"] == {"imported": 1}
    assert sorted(
        CampaignTarget.objects.filter(campaign_id=campaign_id).values_list("phone", flat=True)
    ) == sorted(PHONES)
    status = operator_client.get(f"{URL}/{campaign_id}/status").json()
    assert (status["import_state"], status["targets_imported"], status["queue_length"]) == (
        "complete",
        25,
        25,
    )
    assert "imported 25 of 25 (complete)" in admin_page(admin_client, campaign_id)
    staged = CampaignTargetImport.objects.get(campaign_id=campaign_id)
    assert (staged.phones, staged.completed_at is not None) == ([], True)
    assert AuditEvent.objects.filter(event="notifications.campaign.targets_imported").count() == 1
    started = operator_client.post(f"{URL}/{campaign_id}/start", {}, format="json")
    assert (started.status_code, started.json()["status"]) == (200, "running")


@pytest.mark.django_db
def test_a_dead_importer_is_taken_over_and_no_target_is_added_twice(producer_client, small_limits):
    producer_client.post(URL, campaign_body(PHONES), format="json")
    staged = CampaignTargetImport.objects.get()
    worker = CampaignTargetImporter()
    dead = run_as(worker, "importer:dead")
    assert worker.claim(dead, limit=10) == [staged.pk]
    assert _import_batch(import_id=staged.pk, lease_owner=dead.owner, lease_seconds=60) == (
        "in_progress"
    )
    assert CampaignTarget.objects.count() == 7
    # The lease still runs: nobody else imports meanwhile.
    assert run_worker(CampaignTargetImporter).claimed == 0
    # Say the dead run's last batch committed its targets but its position got lost.
    CampaignTargetImport.objects.filter(pk=staged.pk).update(imported=0)
    later = timezone.now() + timedelta(seconds=worker.lease_seconds + 5)
    summary = run_worker(CampaignTargetImporter, at=later)
    assert (summary.claimed, dict(summary.outcomes)) == (1, {"imported": 1})
    assert CampaignTarget.objects.count() == 25
    assert run_worker(CampaignTargetImporter, at=later).claimed == 0  # done: nothing to claim
    campaign = Campaign.objects.get()
    assert (campaign.import_state, campaign.targets_imported) == ("complete", 25)


@pytest.mark.django_db
def test_a_small_list_is_added_in_the_request(producer_client, small_limits):
    created = producer_client.post(URL, campaign_body(PHONES[:10]), format="json")
    body = created.json()
    assert (body["import_state"], body["targets_imported"], body["queue_length"]) == (
        "complete",
        10,
        10,
    )
    assert not CampaignTargetImport.objects.exists()


@pytest.mark.django_db
def test_campaign_creation_has_a_rate_of_its_own(producer_client, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "campaign_create": "2/min"}
    answers = [
        producer_client.post(URL, campaign_body(PHONES[:1]), format="json").status_code
        for _ in range(3)
    ]
    assert answers == [201, 201, 429]
    assert Campaign.objects.count() == 2
