"""The campaign dispatcher's steps (docs/runbooks/campaign-dispatcher-stalls.md): which
campaigns may send now, one target's send with the provider's answer mapped to the target's
outcomes and codes (send_failed, invalid_number, rate_limited), and the stall detector's
mark."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.adapters import ChannelAdapter, OutboundMessage, channel_adapter
from notifications.campaigns import (
    E164,
    INVALID_NUMBER,
    INVALID_NUMBER_CODES,
    RATE_LIMITED,
    SEND_FAILED,
    _campaign_locked,
    campaign_retry_policy,
    campaign_state,
    in_quiet_hours,
    whatsapp_cannot_send,
)
from notifications.models import Campaign, CampaignTarget
from opsconsole.evidence import audit
from opsconsole.monitoring.alerts import alert_raise


def dispatchable_campaigns(now: datetime) -> list[Campaign]:
    return [
        campaign
        for campaign in Campaign.objects.filter(
            status=Campaign.Status.RUNNING, import_state=Campaign.ImportState.COMPLETE
        ).filter(Q(throttled_until__isnull=True) | Q(throttled_until__lte=now))
        if not in_quiet_hours(campaign, now)
    ]


def campaign_target_send(
    *, target_id: int, lease_owner: str, adapter: ChannelAdapter | None = None
) -> str:
    target = CampaignTarget.objects.select_related("campaign").get(pk=target_id)
    campaign = target.campaign
    if target.lease_owner != lease_owner or target.status not in CampaignTarget.SENDABLE:
        return "lease_lost"
    now = timezone.now()
    if campaign.status != Campaign.Status.RUNNING or (
        campaign.throttled_until and campaign.throttled_until > now
    ):
        # Stopped or rate limited since the claim: hand the target back untouched.
        CampaignTarget.objects.filter(pk=target_id, lease_owner=lease_owner).update(
            lease_owner="", lease_expires_at=None
        )
        return "held_back"
    if whatsapp_cannot_send():
        # Switched off (or unconfigured) while running: the targets wait, none is failed;
        # the dispatcher looks again in a minute and readyz says why.
        Campaign.objects.filter(pk=campaign.pk).update(throttled_until=now + timedelta(minutes=1))
        CampaignTarget.objects.filter(pk=target_id, lease_owner=lease_owner).update(
            lease_owner="", lease_expires_at=None
        )
        return "held_back"
    if not E164.match(target.phone):
        return _target_record(
            target_id,
            lease_owner,
            status=CampaignTarget.Status.INVALID,
            error="invalid_number: not an E.164 phone number",
            error_code=INVALID_NUMBER,
        )
    adapter = adapter or channel_adapter("whatsapp")
    result = adapter.send(
        OutboundMessage(
            channel="whatsapp",
            to=target.phone,
            template=campaign.template,
            context={"campaign": campaign.name},
            idempotency_key=f"campaign-target:{target.pk}",
        )
    )
    if result.ok:
        return _target_record(
            target_id,
            lease_owner,
            status=CampaignTarget.Status.SENT,
            provider_message_id=result.provider_message_id,
        )
    error = f"{result.failure_code}: {result.provider_error_code or result.failure_detail}"[:1000]
    if result.http_status == 429:
        wait = result.retry_after_seconds or 60
        Campaign.objects.filter(pk=campaign.pk).update(
            throttled_until=now + timedelta(seconds=wait)
        )
        return _target_record(
            target_id,
            lease_owner,
            status=CampaignTarget.Status.RETRY_SCHEDULED,
            error=error,
            next_retry_at=now + timedelta(seconds=wait),
            count_attempt=False,
            outcome="rate_limited",
            error_code=RATE_LIMITED,
        )
    if result.provider_error_code in INVALID_NUMBER_CODES:
        return _target_record(
            target_id,
            lease_owner,
            status=CampaignTarget.Status.INVALID,
            error=error,
            error_code=INVALID_NUMBER,
        )
    policy = campaign_retry_policy()
    if result.retryable and not policy.exhausted(target.attempt_count + 1):
        return _target_record(
            target_id,
            lease_owner,
            status=CampaignTarget.Status.RETRY_SCHEDULED,
            error=error,
            next_retry_at=policy.next_retry_at(target.attempt_count + 1),
            error_code=SEND_FAILED,
        )
    return _target_record(
        target_id,
        lease_owner,
        status=CampaignTarget.Status.FAILED,
        error=error,
        error_code=SEND_FAILED,
    )


@transaction.atomic
def _target_record(
    target_id: int,
    lease_owner: str,
    *,
    status: str,
    error: str = "",
    provider_message_id: str = "",
    next_retry_at: datetime | None = None,
    count_attempt: bool = True,
    outcome: str | None = None,
    error_code: str = "",
) -> str:
    target = CampaignTarget.objects.select_for_update().get(pk=target_id)
    if target.lease_owner != lease_owner:
        return "lease_lost"
    now = timezone.now()
    target.record_send(outcome=status)
    target.attempt_count += 1 if count_attempt else 0
    target.last_error = error
    target.error_code = error_code
    target.provider_message_id = provider_message_id or target.provider_message_id
    if next_retry_at is not None:
        target.next_retry_at = next_retry_at
    target.lease_owner, target.lease_expires_at = "", None
    target.save()
    # Every answer from the provider is progress: the stall detector watches this.
    Campaign.objects.filter(pk=target.campaign_id).update(last_progress_at=now, stalled_at=None)
    if not CampaignTarget.objects.filter(
        campaign_id=target.campaign_id, status__in=CampaignTarget.SENDABLE
    ).exists():
        campaign = Campaign.objects.select_for_update().get(pk=target.campaign_id)
        if campaign.status == Campaign.Status.RUNNING:
            before = campaign_state(campaign)
            campaign.complete()
            campaign.save()
            audit.record(
                "notifications.campaign.completed",
                obj=campaign,
                before=before,
                after=campaign_state(campaign),
                actor="worker:campaign_dispatcher_worker",
            )
    return outcome or status


@transaction.atomic
def campaign_mark_stalled(*, campaign_id: int) -> str:
    campaign = _campaign_locked(campaign_id)
    if campaign.status != Campaign.Status.RUNNING or campaign.stalled_at is not None:
        return "not_stalled"
    before = campaign_state(campaign)
    campaign.stalled_at = timezone.now()
    campaign.save()
    audit.record(
        "notifications.campaign.stalled",
        obj=campaign,
        before=before,
        after=campaign_state(campaign),
        actor="worker:campaign_stall_detector",
        metadata={
            "last_progress_at": campaign.last_progress_at.isoformat()
            if campaign.last_progress_at
            else None
        },
    )
    alert_raise(
        kind="campaign-stalled",
        severity="warning",
        obj=campaign,
        message=f"Campaign {campaign.name} is running but its targets have not advanced "
        "in 5 minutes. Runbook: check status, stop, then start once the provider is healthy.",
    )
    return "stalled"
