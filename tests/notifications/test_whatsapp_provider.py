"""WhatsApp campaigns through Meta's Cloud API, against a local server that speaks its wire
format: the template message it documents, and its error codes mapped to the campaign's
outcomes (invalid number, rate limit, outage: docs/runbooks/whatsapp-send-failures.md)."""

from __future__ import annotations

import pytest

from notifications import campaigns
from notifications.models import Campaign
from notifications.workers import CampaignDispatcherWorker
from tests.workers import run_worker

MESSAGES = "/v21.0/1234567890/messages"


@pytest.fixture
def cloud_api(httpserver, settings):
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        "whatsapp": {"url": "", "api_key": "", "provider": "cloud_api"},
    }
    settings.WHATSAPP = {
        "PHONE_NUMBER_ID": "1234567890",
        "ACCESS_TOKEN": "EAAG-test-token",
        "API_BASE": httpserver.url_for("/").rstrip("/"),
        "API_VERSION": "v21.0",
        "LANGUAGE": "pt_PT",
    }
    settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = 1
    return httpserver


def running_campaign(phones: list[str]) -> Campaign:
    campaign = campaigns.campaign_create(name="Spring", template="spring_promo", phones=phones)
    return campaigns.campaign_start(campaign_id=campaign.pk, actor="test")


def meta_error(code: int, message: str) -> dict:
    return {"error": {"message": message, "type": "OAuthException", "code": code}}


@pytest.mark.django_db
def test_a_template_message_goes_over_the_wire_as_meta_documents_it(cloud_api):
    cloud_api.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "351910000001", "wa_id": "351910000001"}],
            "messages": [{"id": "wamid.HBgM"}],
        }
    )
    campaign = running_campaign(["+351910000001"])
    assert run_worker(CampaignDispatcherWorker).outcomes == {"sent": 1}
    target = campaign.targets.get()
    assert (target.status, target.provider_message_id) == ("sent", "wamid.HBgM")
    request, _ = cloud_api.log[-1]
    assert request.headers["Authorization"] == "Bearer EAAG-test-token"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "351910000001",
        "type": "template",
        "template": {"name": "spring_promo", "language": {"code": "pt_PT"}},
    }


@pytest.mark.django_db
def test_metas_codes_map_to_invalid_throttled_and_retried(cloud_api):
    cloud_api.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        meta_error(131026, "Message undeliverable"), status=400
    )
    campaign = running_campaign(["+351910000001"])
    run_worker(CampaignDispatcherWorker)
    target = campaign.targets.get()
    assert (target.status, target.last_error) == ("invalid", "http_400: 131026")

    cloud_api.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        meta_error(130429, "Rate limit hit"), status=400, headers={"Retry-After": "120"}
    )
    throttled = running_campaign(["+351910000002"])
    assert run_worker(CampaignDispatcherWorker).outcomes == {"rate_limited": 1}
    throttled.refresh_from_db()
    assert throttled.throttled_until is not None

    cloud_api.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        meta_error(131000, "Something went wrong"), status=500
    )
    outage = running_campaign(["+351910000003"])
    Campaign.objects.filter(pk=throttled.pk).update(status=Campaign.Status.PAUSED)
    run_worker(CampaignDispatcherWorker)
    assert outage.targets.get().status == "retry_scheduled"
