"""Importing a campaign's large target list after the request that staged it (the target
importer's step): one batch a transaction, moving the import's position with the targets it
adds, so a run that dies mid-batch rolls both back and the next run adds that batch again;
the (campaign, phone) pair is unique besides, so no run adds a target twice."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.models import Campaign, CampaignTarget, CampaignTargetImport
from opsconsole.evidence import audit

IMPORTER_ACTOR = "worker:campaign_target_importer"


def campaign_import_run(
    *, import_id: int, lease_owner: str, lease_seconds: int, budget_seconds: float
) -> str:
    """Import batches until the list is in ("imported"), the lease is lost ("lease_lost"),
    or `budget_seconds` are spent ("in_progress": the next run goes on where this stopped)."""
    ends = time.monotonic() + budget_seconds
    while True:
        outcome = _import_batch(
            import_id=import_id, lease_owner=lease_owner, lease_seconds=lease_seconds
        )
        if outcome != "in_progress" or time.monotonic() >= ends:
            break
    if outcome == "in_progress":
        # Due again at once, for the next run (or this worker's next drain) to go on.
        CampaignTargetImport.objects.filter(pk=import_id, lease_owner=lease_owner).update(
            lease_owner="", lease_expires_at=None, next_retry_at=timezone.now()
        )
    return outcome


@transaction.atomic
def _import_batch(*, import_id: int, lease_owner: str, lease_seconds: int) -> str:
    staged = CampaignTargetImport.objects.select_for_update().get(pk=import_id)
    if staged.lease_owner != lease_owner:
        return "lease_lost"
    if staged.completed_at is not None:
        return "imported"
    batch = staged.phones[staged.imported : staged.imported + settings.CAMPAIGN_IMPORT_BATCH_SIZE]
    CampaignTarget.objects.bulk_create(
        [CampaignTarget(campaign_id=staged.campaign_id, phone=phone) for phone in batch],
        ignore_conflicts=True,
    )
    staged.imported += len(batch)
    now = timezone.now()
    Campaign.objects.filter(pk=staged.campaign_id).update(
        targets_imported=staged.imported, updated_at=now
    )
    if staged.imported < staged.total and batch:
        # The next batch gets a fresh lease: it is renewed with each committed batch.
        staged.lease_expires_at = now + timedelta(seconds=lease_seconds)
        staged.save(update_fields=["imported", "lease_expires_at"])
        return "in_progress"
    campaign = Campaign.objects.select_for_update().get(pk=staged.campaign_id)
    before = {"import_state": campaign.import_state, "targets_imported": campaign.targets_imported}
    campaign.import_state = Campaign.ImportState.COMPLETE
    campaign.targets_imported = staged.imported
    campaign.save(update_fields=["import_state", "targets_imported", "updated_at"])
    # The targets hold the numbers now: the staged copy of the list is not kept.
    staged.phones, staged.completed_at = [], now
    staged.lease_owner, staged.lease_expires_at = "", None
    staged.save()
    audit.record(
        "notifications.campaign.targets_imported",
        obj=campaign,
        before=before,
        after={"import_state": campaign.import_state, "targets_imported": staged.imported},
        actor=IMPORTER_ACTOR,
    )
    return "imported"
