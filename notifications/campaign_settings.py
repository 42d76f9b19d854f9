"""A campaign's quiet hours and throttle, changed by staff
(docs/runbooks/whatsapp-send-failures.md): validated, timezone-aware, audited with the reason;
the dispatcher reads them on its next run."""

from __future__ import annotations

from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction

from notifications.campaigns import CampaignStateConflict
from notifications.models import Campaign
from opsconsole.evidence import audit
from opsconsole.http.errors import InvalidInput, NotFound

SETTINGS_FIELDS = (
    "throttle_per_minute",
    "quiet_hours_start",
    "quiet_hours_end",
    "quiet_hours_timezone",
)
THROTTLE_RANGE = (1, 6000)


class CampaignSettingsInvalid(InvalidInput):
    code = "NTF-400-INVALID-PAYLOAD"


def _settings(campaign: Campaign) -> dict[str, Any]:
    values = {name: getattr(campaign, name) for name in SETTINGS_FIELDS}
    return {name: v.isoformat() if isinstance(v, time) else v for name, v in values.items()}


def campaign_settings_problems(values: dict[str, Any]) -> dict[str, str]:
    """Why these settings cannot be saved (empty when they can)."""
    problems: dict[str, str] = {}
    throttle = values.get("throttle_per_minute")
    low, high = THROTTLE_RANGE
    if isinstance(throttle, bool) or not isinstance(throttle, int) or not low <= throttle <= high:
        problems["throttle_per_minute"] = f"Messages a minute, from {low} to {high}."
    if (values.get("quiet_hours_start") is None) != (values.get("quiet_hours_end") is None):
        problems["quiet_hours_end"] = "Quiet hours need both a start and an end (or neither)."
    elif values.get("quiet_hours_start") is not None and (
        values["quiet_hours_start"] == values["quiet_hours_end"]
    ):
        problems["quiet_hours_end"] = "The end must differ from the start."
    try:
        ZoneInfo(str(values.get("quiet_hours_timezone") or ""))
    except (ZoneInfoNotFoundError, ValueError):
        problems["quiet_hours_timezone"] = "An IANA time zone, like Europe/Lisbon."
    return problems


@transaction.atomic
def campaign_settings_update(
    *, campaign_id: int, changes: dict[str, Any], actor: audit.Actor, reason: str
) -> Campaign:
    if not reason.strip():
        raise CampaignSettingsInvalid(details={"fields": {"reason": ["A reason is required."]}})
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise CampaignSettingsInvalid(
            details={"fields": {name: ["Not a setting."] for name in unknown}}
        )
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound("Campaign not found.", code="NTF-404-CAMPAIGN-NOT-FOUND")
    if campaign.status == Campaign.Status.COMPLETED:
        # Nothing is left to send: a finished campaign's settings are its record.
        raise CampaignStateConflict("A completed campaign's settings cannot change.")
    merged = {name: getattr(campaign, name) for name in SETTINGS_FIELDS} | changes
    if problems := campaign_settings_problems(merged):
        raise CampaignSettingsInvalid(details={"fields": {k: [v] for k, v in problems.items()}})
    before = _settings(campaign)
    for name, value in changes.items():
        setattr(campaign, name, value)
    campaign.save(update_fields=[*changes, "updated_at"])
    audit.record(
        "notifications.campaign.settings_changed",
        obj=campaign,
        before=before,
        after=_settings(campaign),
        actor=actor,
        reason=reason,
    )
    return campaign
