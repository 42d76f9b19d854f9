"""Producers create campaigns with their targets (JSON or a CSV upload) and register push
tokens; customers register and remove their own devices only."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from notifications.models import Campaign, PushToken
from opsconsole.models import AuditEvent
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory


@pytest.fixture
def producer_client(db):
    return token_client(UserFactory(username="shop", groups=["Event producer"]))


@pytest.mark.django_db
def test_a_campaign_from_json_and_from_a_csv(producer_client):
    body = {
        "name": "Spring",
        "template": "promo",
        "phones": ["+351910000001", "+351910000002"],
        "quiet_hours_start": "22:00",
        "quiet_hours_end": "08:00",
        "quiet_hours_timezone": "Europe/Lisbon",
    }
    created = producer_client.post("/api/v1/campaigns", body, format="json")
    assert created.status_code == 201, created.content
    assert (created.json()["status"], created.json()["queue_length"]) == ("draft", 2)
    csv = SimpleUploadedFile(
        "targets.csv", b"name,phone\nAna,+351910000003\nRui,+351910000004\n", "text/csv"
    )
    uploaded = producer_client.post(
        "/api/v1/campaigns",
        {"name": "CSV", "template": "promo", "targets": csv},
        format="multipart",
    )
    assert uploaded.status_code == 201, uploaded.content
    campaign = Campaign.objects.get(name="CSV")
    assert sorted(campaign.targets.values_list("phone", flat=True)) == [
        "+351910000003",
        "+351910000004",
    ]
    assert AuditEvent.objects.filter(event="notifications.campaign.created").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "template": "t"}, "phones"),
        (
            {"name": "x", "template": "t", "phones": ["+1"], "quiet_hours_start": "22:00"},
            "quiet_hours_end",
        ),
        (
            {"name": "x", "template": "t", "phones": ["+1"], "quiet_hours_timezone": "Mars/Base"},
            "quiet_hours_timezone",
        ),
    ],
)
def test_bad_campaigns_are_refused(producer_client, body, field):
    response = producer_client.post("/api/v1/campaigns", body, format="json")
    assert response.status_code == 400
    assert field in error_of(response)["details"]["fields"]
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_push_tokens_registered_and_removed_by_whom_they_belong_to(producer_client):
    ana = UserFactory(username="ana", groups=["Booking client"])
    rui = UserFactory(username="rui", groups=["Booking client"])
    own = token_client(ana).post("/api/v1/push-tokens", {"token": "tok-ana"}, format="json")
    assert (own.status_code, own.json()["user_id"]) == (201, ana.pk)
    again = token_client(ana).post("/api/v1/push-tokens", {"token": "tok-ana"}, format="json")
    assert again.status_code == 201  # a customer always hears 201 (issue #33: no token oracle)
    for_other = token_client(ana).post(
        "/api/v1/push-tokens", {"token": "tok-x", "user_id": rui.pk}, format="json"
    )
    assert for_other.status_code == 400
    by_producer = producer_client.post(
        "/api/v1/push-tokens", {"token": "tok-rui", "user_id": rui.pk}, format="json"
    )
    assert (by_producer.status_code, by_producer.json()["user_id"]) == (201, rui.pk)
    # A customer cannot remove another's token; it looks missing to them.
    assert token_client(ana).delete("/api/v1/push-tokens/tok-rui").status_code == 404
    removed = token_client(rui).delete("/api/v1/push-tokens/tok-rui")
    assert (removed.status_code, removed.json()["valid"]) == (200, False)
    assert PushToken.objects.get(token="tok-rui").invalidated_at is not None
    assert AuditEvent.objects.filter(event="notifications.push_token.removed").count() == 1
