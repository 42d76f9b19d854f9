"""GET /api/v1/storefront/banners: the banners live now for anyone, and none, said to be
suppressed, while an operator has suspended promotional banners."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.helpers import error_of
from tests.storefront.factories import PromotionalBannerFactory, resume, suspend

BANNERS = "/api/v1/storefront/banners"


@pytest.mark.django_db
def test_it_serves_the_live_banners_newest_first_to_anyone(surfaces, anonymous_client):
    now = timezone.now()
    older = PromotionalBannerFactory(title="Older", starts_at=now - timedelta(days=2))
    newer = PromotionalBannerFactory(
        title="Newer", link="https://example.com/spring", ends_at=now + timedelta(days=1)
    )
    PromotionalBannerFactory(title="Ended", starts_at=now - timedelta(days=3), ends_at=now)
    PromotionalBannerFactory(title="Tomorrow", starts_at=now + timedelta(days=1))

    response = anonymous_client.get(BANNERS)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["suppressed"] is False
    assert [b["title"] for b in body["banners"]] == ["Newer", "Older"]
    assert body["banners"][0] == {
        "id": newer.pk,
        "title": "Newer",
        "body": newer.body,
        "link": "https://example.com/spring",
        "starts_at": body["banners"][0]["starts_at"],
        "ends_at": body["banners"][0]["ends_at"],
    }
    assert body["banners"][1]["ends_at"] is None and body["banners"][1]["id"] == older.pk


@pytest.mark.django_db
def test_while_suspended_it_answers_no_banners_and_says_so_not_an_error(
    surfaces, anonymous_client, viewer_client
):
    PromotionalBannerFactory(title="Spring sale")
    suspend(surfaces["promotional_banners"])

    for caller in (anonymous_client, viewer_client):
        response = caller.get(BANNERS)
        assert response.status_code == 200, response.content
        assert response.json() == {"banners": [], "suppressed": True}

    resume(surfaces["promotional_banners"])
    served = anonymous_client.get(BANNERS).json()
    assert served["suppressed"] is False
    assert [b["title"] for b in served["banners"]] == ["Spring sale"]


@pytest.mark.django_db
def test_it_is_rate_limited_per_address_with_the_envelope(surfaces, anonymous_client, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "anon": "2/min"}
    assert [anonymous_client.get(BANNERS).status_code for _ in range(2)] == [200, 200]
    refused = anonymous_client.get(BANNERS)
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "STF-429-THROTTLED"
    assert int(refused["Retry-After"]) > 0


@pytest.mark.django_db
def test_the_schema_documents_the_route_and_its_suppressed_answer(anonymous_client):
    schema = anonymous_client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/storefront/banners"]["get"]
    assert {"200", "429", "503"} <= set(operation["responses"])
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    properties = schema["components"]["schemas"][answer.rsplit("/", 1)[1]]["properties"]
    assert set(properties) == {"banners", "suppressed"}
