from __future__ import annotations

import csv
import io
from datetime import time, timedelta

import pytest
import time_machine
from django.utils import timezone
from werkzeug import Request, Response

from notifications import campaign_settings, campaigns
from notifications.models import Campaign, CampaignTarget
from notifications.workers import CampaignDispatcherWorker, CampaignStallDetector
from opsconsole.models import Alert, AuditEvent
from tests.helpers import action_post, error_of
from tests.workers import run_worker

PHONES = ["+351910000001", "+351910000002", "+351910000003"]


@pytest.fixture
def whatsapp(httpserver, settings):
    settings.NOTIFICATION_CHANNELS = {"whatsapp": {"url": httpserver.url_for("/wa")}}
    settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = 0.5
    return httpserver


def running_campaign(phones=PHONES, **kwargs) -> Campaign:
    campaign = campaigns.campaign_create(
        name="Spring promo", template="promo", phones=phones, **kwargs
    )
    return campaigns.campaign_start(campaign_id=campaign.pk, actor="test")


def statuses(campaign: Campaign) -> dict[str, str]:
    return dict(campaign.targets.values_list("phone", "status"))


@pytest.mark.django_db
def test_the_dispatcher_sends_each_target_once_and_completes(whatsapp):
    whatsapp.expect_request("/wa").respond_with_json({"id": "wamid.1"}, status=202)
    campaign = running_campaign()
    assert run_worker(CampaignDispatcherWorker).outcomes == {"sent": 3}
    assert set(statuses(campaign).values()) == {"sent"}
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"
    keys = [r.headers["Idempotency-Key"] for r, _ in whatsapp.log]
    assert len(set(keys)) == 3


@pytest.mark.django_db
def test_start_stop_and_status_through_the_api(operator_client, viewer_client, whatsapp):
    campaign = campaigns.campaign_create(name="c", template="t", phones=PHONES)
    started = operator_client.post(f"/api/v1/campaigns/{campaign.pk}/start", {}, format="json")
    assert started.status_code == 200, started.content
    assert (started.json()["status"], started.json()["queue_length"]) == ("running", 3)
    stopped = operator_client.post(
        f"/api/v1/campaigns/{campaign.pk}/stop", {"reason": "WABA 5xx"}, format="json"
    )
    assert stopped.json()["status"] == "paused"
    assert run_worker(CampaignDispatcherWorker).claimed == 0  # a paused campaign sends nothing
    status = viewer_client.get(f"/api/v1/campaigns/{campaign.pk}/status").json()
    assert status["targets_by_status"] == {
        "pending": 3,
        "retry_scheduled": 0,
        "sent": 0,
        "failed": 0,
        "invalid": 0,
    }
    assert AuditEvent.objects.get(event="notifications.campaign.stopped").reason == "WABA 5xx"
    assert viewer_client.post(f"/api/v1/campaigns/{campaign.pk}/start").status_code == 403
    missing = viewer_client.get("/api/v1/campaigns/999999/status")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "NTF-404-CAMPAIGN-NOT-FOUND")


@pytest.mark.django_db
def test_the_throttle_caps_sends_per_run(whatsapp):
    whatsapp.expect_request("/wa").respond_with_json({"id": "x"}, status=202)
    campaign = running_campaign(
        phones=[f"+35191000{n:04d}" for n in range(10)], throttle_per_minute=4
    )
    assert run_worker(CampaignDispatcherWorker).claimed == 4
    assert campaigns.campaign_status(campaign_id=campaign.pk)["queue_length"] == 6


@pytest.mark.django_db
def test_quiet_hours_hold_sends_back(whatsapp):
    whatsapp.expect_request("/wa").respond_with_json({"id": "x"}, status=202)
    now = timezone.now().replace(hour=23, minute=30)
    with time_machine.travel(now):
        running_campaign(quiet_hours=(time(22, 0), time(8, 0)))
        assert run_worker(CampaignDispatcherWorker).claimed == 0
    with time_machine.travel(now + timedelta(hours=9)):
        assert run_worker(CampaignDispatcherWorker).claimed == 3


@pytest.mark.django_db
def test_a_429_honours_retry_after_and_reschedules_the_campaign(whatsapp):
    whatsapp.expect_oneshot_request("/wa").respond_with_data(
        "rate limited", status=429, headers={"Retry-After": "120"}
    )
    campaign = running_campaign()
    summary = run_worker(CampaignDispatcherWorker)
    assert summary.outcomes["rate_limited"] == 1
    assert summary.outcomes.get("held_back", 0) == 2  # the rest of the batch waits too
    campaign.refresh_from_db()
    assert 110 <= (campaign.throttled_until - timezone.now()).total_seconds() <= 121
    assert run_worker(CampaignDispatcherWorker).claimed == 0
    whatsapp.expect_request("/wa").respond_with_json({"id": "x"}, status=202)
    with time_machine.travel(campaign.throttled_until + timedelta(seconds=1)):
        assert run_worker(CampaignDispatcherWorker).outcomes == {"sent": 3}


@pytest.mark.django_db
def test_invalid_numbers_are_marked_and_exported_as_csv(whatsapp, admin_client):
    def answer(request: Request) -> Response:
        if request.json["to"] == "+351910000002":
            return Response(
                '{"error": {"code": "invalid_number"}}', status=400, content_type="application/json"
            )
        return Response('{"id": "ok"}', status=202, content_type="application/json")

    whatsapp.expect_request("/wa").respond_with_handler(answer)
    campaign = running_campaign(phones=[*PHONES[:2], "912 not a number"])
    run_worker(CampaignDispatcherWorker)
    assert statuses(campaign) == {
        "+351910000001": "sent",
        "+351910000002": "invalid",
        "912 not a number": "invalid",
    }
    assert len(whatsapp.log) == 2  # the malformed number never reached the provider
    response = action_post(
        admin_client, "/admin/notifications/campaign/", "export_invalid_numbers", [campaign.pk]
    )
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    # A cell starting with + is a formula to a spreadsheet: exported as text.
    assert sorted(row["phone"] for row in rows) == ["'+351910000002", "912 not a number"]


@pytest.mark.django_db
def test_5xx_and_timeouts_are_retried_with_backoff(hanging_handler, whatsapp):

    whatsapp.expect_request("/wa").respond_with_handler(hanging_handler(1.0))
    campaign = running_campaign(phones=PHONES[:1])
    run_worker(CampaignDispatcherWorker)
    target = CampaignTarget.objects.get(campaign=campaign)
    assert (target.status, target.attempt_count) == ("retry_scheduled", 1)
    assert "read_timeout" in target.last_error
    assert target.next_retry_at > timezone.now()
    # The toast (docs/runbooks/whatsapp-send-failures.md): the failure carries send_failed,
    # counted in the campaign's status.
    assert target.error_code == "send_failed"
    status = campaigns.campaign_status(campaign_id=campaign.pk)
    assert status["errors_by_code"] == {"send_failed": 1}


@pytest.mark.django_db
def test_the_stall_detector_marks_a_campaign_that_stopped_advancing(whatsapp, operator):
    campaign = running_campaign()
    assert CampaignStallDetector().run_once(triggered_by="test").claimed == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert CampaignStallDetector().run_once(triggered_by="test").outcomes == {"stalled": 1}
        status = campaigns.campaign_status(campaign_id=campaign.pk)
        assert (status["status"], status["stalled"], status["queue_length"]) == ("running", True, 3)
        assert Alert.objects.get(kind="campaign-stalled").object_id == str(campaign.pk)
        # The runbook: stop, then start once the provider is healthy; the stall clears.
        campaigns.campaign_stop(campaign_id=campaign.pk, actor=operator, reason="stalled")
        campaigns.campaign_start(campaign_id=campaign.pk, actor=operator, reason="EF healthy")
        assert campaigns.campaign_status(campaign_id=campaign.pk)["stalled"] is False
        assert CampaignStallDetector().run_once(triggered_by="test").claimed == 0


@pytest.mark.django_db
def test_a_paused_or_quiet_campaign_is_not_stalled(whatsapp):
    campaign = running_campaign(quiet_hours=(time(0, 0), time(23, 59)))
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        assert CampaignStallDetector().run_once(triggered_by="test").claimed == 0
    campaigns.campaign_stop(campaign_id=campaign.pk, actor="x")
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        assert CampaignStallDetector().run_once(triggered_by="test").claimed == 0


@pytest.mark.django_db
def test_the_admin_campaign_page_shows_queue_length_and_targets_by_status(admin_client):
    campaign = running_campaign()
    page = admin_client.get(f"/admin/notifications/campaign/{campaign.pk}/change/").content
    assert "queue length <strong>3</strong>; pending: 3" in page.decode()


@pytest.mark.django_db
def test_a_campaign_does_not_start_or_burn_its_list_while_whatsapp_cannot_send(
    operator_client, whatsapp, settings
):
    campaign = campaigns.campaign_create(name="c", template="t", phones=PHONES)
    settings.NOTIFICATION_CHANNELS = {"whatsapp": {"provider": "none"}}  # WHATSAPP_PROVIDER=none
    refused = operator_client.post(f"/api/v1/campaigns/{campaign.pk}/start", {}, format="json")
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "NTF-409-CHANNEL-UNAVAILABLE"
    assert error["details"]["reason"] == "CHANNEL_SWITCHED_OFF: WHATSAPP_PROVIDER=none"
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"

    # Switched off while running: the targets wait untouched, none is failed.
    settings.NOTIFICATION_CHANNELS = {"whatsapp": {"url": whatsapp.url_for("/wa")}}
    campaigns.campaign_start(campaign_id=campaign.pk, actor="test")
    settings.NOTIFICATION_CHANNELS = {"whatsapp": {"provider": "none"}}
    assert run_worker(CampaignDispatcherWorker).outcomes == {"held_back": 3}
    assert set(statuses(campaign).values()) == {"pending"}
    assert run_worker(CampaignDispatcherWorker).claimed == 0  # it looks again in a minute
    assert whatsapp.log == []


@pytest.mark.django_db
def test_staff_fix_quiet_hours_and_throttle_in_the_admin_audited(admin_client, client):
    campaign = campaigns.campaign_create(name="c", template="t", phones=PHONES)
    url = f"/admin/notifications/campaign/{campaign.pk}/change/"
    form = {
        "throttle_per_minute": "20",
        "quiet_hours_start": "21:00",
        "quiet_hours_end": "09:00",
        "quiet_hours_timezone": "Europe/Lisbon",
    }
    assert admin_client.post(url, form).status_code == 200  # no reason: the form again
    bad = admin_client.post(url, {**form, "quiet_hours_timezone": "Lisbon", "reason": "x"})
    assert bad.status_code == 200
    half = admin_client.post(url, {**form, "quiet_hours_end": "", "reason": "x"})
    assert half.status_code == 200
    assert Campaign.objects.get(pk=campaign.pk).throttle_per_minute == 60
    saved = admin_client.post(url, {**form, "reason": "complaints at night"})
    assert saved.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.throttle_per_minute, str(campaign.quiet_hours_start)) == (20, "21:00:00")
    event = AuditEvent.objects.get(event="notifications.campaign.settings_changed")
    assert (
        event.before_state["throttle_per_minute"],
        event.after_state["quiet_hours_timezone"],
    ) == (
        60,
        "Europe/Lisbon",
    )
    assert event.reason == "complaints at night"
    # 22:30 in Lisbon (winter, UTC+0) is inside the new quiet hours.
    with time_machine.travel("2026-12-01T22:30:00Z"):
        assert campaigns.in_quiet_hours(campaign)


@pytest.mark.django_db
def test_a_completed_campaigns_settings_are_a_record_not_a_form(admin_client):
    campaign = campaigns.campaign_create(name="c", template="t", phones=PHONES)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED)
    page = admin_client.get(f"/admin/notifications/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    assert b'name="throttle_per_minute"' not in page.content
    assert b"Save" not in page.content
    with pytest.raises(campaigns.CampaignStateConflict):
        campaign_settings.campaign_settings_update(
            campaign_id=campaign.pk, changes={"throttle_per_minute": 5}, actor="t", reason="x"
        )
    assert Campaign.objects.get(pk=campaign.pk).throttle_per_minute == 60
    assert not AuditEvent.objects.filter(event="notifications.campaign.settings_changed").exists()
