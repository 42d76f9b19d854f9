"""WhatsApp campaigns: start, stop (pause), status, quiet hours, a throttle, 429 handling,
invalid numbers, the dispatcher and the stall detector (docs/runbooks/whatsapp-send-failures.md,
docs/runbooks/campaign-dispatcher-stalls.md)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from notifications.models import Campaign, CampaignTarget, CampaignTargetImport
from opsconsole.evidence import audit
from opsconsole.failures.retry import RetryPolicy
from opsconsole.http.errors import Conflict, InvalidInput, NotFound
from opsconsole.outbound.providers import (
    CHANNEL_SWITCHED_OFF,
    PROVIDER_NOT_CONFIGURED,
    Mode,
    provider,
)
from opsconsole.workers import wakes

logger = structlog.get_logger(__name__)

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
# Provider answers that mean "this number will never work": mark the target invalid.
INVALID_NUMBER_CODES = frozenset({"invalid_number", "not_a_whatsapp_user", "131026"})


class CampaignNotFound(NotFound):
    code = "NTF-404-CAMPAIGN-NOT-FOUND"
    default_message = "Campaign not found."


class CampaignInvalid(InvalidInput):
    code = "NTF-400-INVALID-PAYLOAD"


IMPORTER = "campaign_target_importer"


class CampaignStateConflict(Conflict):
    code = "NTF-409-CAMPAIGN-STATE-CONFLICT"


class CampaignChannelUnavailable(Conflict):
    """Starting would fail every target at once: WhatsApp is switched off or not configured."""

    code = "NTF-409-CHANNEL-UNAVAILABLE"
    default_message = "WhatsApp cannot send (switched off or not configured); not started."


def whatsapp_cannot_send() -> str:
    """Why the campaign channel cannot send now ("" when it can)."""
    item = provider("whatsapp")
    mode = item.mode()
    if mode == Mode.OFF:
        return f"{CHANNEL_SWITCHED_OFF}: WHATSAPP_PROVIDER=none"
    if mode == Mode.MISSING:
        return f"{PROVIDER_NOT_CONFIGURED}: {item.not_configured_detail()}"
    return ""


# The codes on a target that did not go out (docs/runbooks/whatsapp-send-failures.md).
SEND_FAILED = "send_failed"
INVALID_NUMBER = "invalid_number"
RATE_LIMITED = "rate_limited"


def campaign_retry_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.CAMPAIGN_TARGET_MAX_ATTEMPTS, base_seconds=60, cap_seconds=3600
    )


def in_quiet_hours(campaign: Campaign, now: datetime | None = None) -> bool:
    start, end = campaign.quiet_hours_start, campaign.quiet_hours_end
    if start is None or end is None or start == end:
        return False
    local: time = (now or timezone.now()).astimezone(ZoneInfo(campaign.quiet_hours_timezone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window wraps past midnight


def campaign_state(campaign: Campaign) -> dict[str, Any]:
    return {
        "status": campaign.status,
        "stalled_at": campaign.stalled_at.isoformat() if campaign.stalled_at else None,
        "throttled_until": campaign.throttled_until.isoformat()
        if campaign.throttled_until
        else None,
    }


@transaction.atomic
def campaign_create(
    *,
    name: str,
    template: str,
    phones: list[str],
    throttle_per_minute: int = 60,
    quiet_hours: tuple[time, time] | None = None,
    quiet_hours_timezone: str = "UTC",
    actor: audit.Actor = None,
) -> Campaign:
    """A draft campaign with its targets. A list above CAMPAIGN_INLINE_TARGETS is staged and
    imported after the request by the target importer (the request stays short); the
    campaign cannot start until its import is complete."""
    unique = list(dict.fromkeys(phone.strip() for phone in phones))
    if len(unique) > settings.CAMPAIGN_MAX_TARGETS_PER_REQUEST:
        raise CampaignInvalid(
            details={
                "fields": {
                    "phones": [f"At most {settings.CAMPAIGN_MAX_TARGETS_PER_REQUEST} targets."]
                }
            }
        )
    inline = len(unique) <= settings.CAMPAIGN_INLINE_TARGETS
    campaign = Campaign.objects.create(
        name=name,
        template=template,
        throttle_per_minute=throttle_per_minute,
        quiet_hours_start=quiet_hours[0] if quiet_hours else None,
        quiet_hours_end=quiet_hours[1] if quiet_hours else None,
        quiet_hours_timezone=quiet_hours_timezone,
        import_state=Campaign.ImportState.COMPLETE if inline else Campaign.ImportState.IMPORTING,
        targets_total=len(unique),
        targets_imported=len(unique) if inline else 0,
    )
    if inline:
        CampaignTarget.objects.bulk_create(
            [CampaignTarget(campaign=campaign, phone=phone) for phone in unique]
        )
    else:
        CampaignTargetImport.objects.create(campaign=campaign, phones=unique, total=len(unique))
        transaction.on_commit(lambda: wakes.wake(IMPORTER, "campaign_created"))
    audit.record(
        "notifications.campaign.created",
        obj=campaign,
        after={
            **campaign_state(campaign),
            "targets": len(unique),
            "import_state": campaign.import_state,
        },
        actor=actor,
    )
    return campaign


def _campaign_locked(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise CampaignNotFound()
    return campaign


@transaction.atomic
def campaign_start(*, campaign_id: int, actor: audit.Actor, reason: str = "") -> Campaign:
    """Start or resume. After a stall the runbook is stop then start: that clears the stall."""
    campaign = _campaign_locked(campaign_id)
    if campaign.status == Campaign.Status.RUNNING:
        return campaign
    if campaign.status == Campaign.Status.COMPLETED:
        raise CampaignStateConflict(
            "A completed campaign cannot be started again.", details={"status": campaign.status}
        )
    if campaign.import_state != Campaign.ImportState.COMPLETE:
        raise CampaignStateConflict(
            "The campaign's targets are still being imported; start it once they are all in.",
            details={"status": campaign.status, **import_progress(campaign)},
        )
    if why := whatsapp_cannot_send():
        raise CampaignChannelUnavailable(details={"channel": "whatsapp", "reason": why})
    before = campaign_state(campaign)
    campaign.start()
    campaign.save()
    audit.record(
        "notifications.campaign.started",
        obj=campaign,
        before=before,
        after=campaign_state(campaign),
        actor=actor,
        reason=reason,
    )
    return campaign


@transaction.atomic
def campaign_stop(*, campaign_id: int, actor: audit.Actor, reason: str = "") -> Campaign:
    """The runbook's Stop: pause sending; targets keep their state and resume on start."""
    campaign = _campaign_locked(campaign_id)
    if campaign.status == Campaign.Status.PAUSED:
        return campaign
    if campaign.status != Campaign.Status.RUNNING:
        raise CampaignStateConflict(
            "Only a running campaign can be stopped.", details={"status": campaign.status}
        )
    before = campaign_state(campaign)
    campaign.stop()
    campaign.save()
    audit.record(
        "notifications.campaign.stopped",
        obj=campaign,
        before=before,
        after=campaign_state(campaign),
        actor=actor,
        reason=reason,
    )
    return campaign


def import_progress(campaign: Campaign) -> dict[str, Any]:
    return {
        "import_state": campaign.import_state,
        "targets_imported": campaign.targets_imported,
        "targets_total": campaign.targets_total,
    }


def campaign_status(*, campaign_id: int) -> dict[str, Any]:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise CampaignNotFound()
    by_status = Counter(
        dict(
            campaign.targets.values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
    )
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "queue_length": sum(by_status[s] for s in CampaignTarget.SENDABLE),
        "targets_by_status": {s: by_status.get(s, 0) for s in CampaignTarget.Status.values},
        "last_progress_at": campaign.last_progress_at,
        "stalled": campaign.stalled_at is not None,
        "stalled_at": campaign.stalled_at,
        "throttled_until": campaign.throttled_until,
        "in_quiet_hours": in_quiet_hours(campaign),
        "throttle_per_minute": campaign.throttle_per_minute,
        **import_progress(campaign),
        # What the console's toast says: the targets' error codes, counted.
        "errors_by_code": dict(
            campaign.targets.exclude(error_code="")
            .values_list("error_code")
            .annotate(n=Count("id"))
            .values_list("error_code", "n")
        ),
    }


@transaction.atomic
def campaign_target_requeue(*, target_id: int, actor: audit.Actor, reason: str) -> CampaignTarget:
    target = CampaignTarget.objects.select_for_update().get(pk=target_id)
    if target.status != CampaignTarget.Status.FAILED:
        raise CampaignStateConflict(
            "Only a failed target can be sent again.", details={"status": target.status}
        )
    before = {"status": target.status, "attempts": target.attempt_count}
    target.requeue()
    target.save()
    audit.record(
        "notifications.campaign_target.requeued",
        obj=target,
        before=before,
        after={"status": target.status, "attempts": 0},
        actor=actor,
        reason=reason,
    )
    return target
