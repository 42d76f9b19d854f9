"""Operator replays: one item, or one item with an edited payload."""

from __future__ import annotations

import difflib
import json
from typing import Any

from django.db import transaction
from jsonschema import Draft202012Validator

from opsconsole.evidence import audit
from opsconsole.http.context import current_request_id, current_traceparent
from recovery.errors import (
    IntegrationInvalidPayload,
    IntegrationNotFound,
    RecoveryNotFound,
    RecoveryReplayConflict,
)
from recovery.models import (
    Integration,
    PayloadEdit,
    RecoveryItem,
)
from recovery.services.delivery import EVENT_PREFIX, EVENT_REPLAYED, announce_deliveries


def recovery_item_get(
    *, integration_id: int, item_id: int, for_update: bool = False
) -> RecoveryItem:
    """The same error for a missing item and one that belongs to another integration."""
    queryset = RecoveryItem.objects.select_related("integration")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    item = queryset.filter(pk=item_id, integration_id=integration_id).first()
    if item is None:
        if not Integration.objects.filter(pk=integration_id).exists():
            raise IntegrationNotFound()
        raise RecoveryNotFound()
    return item


@transaction.atomic
def recovery_item_replay(
    *, integration_id: int, item_id: int, actor: audit.Actor, reason: str
) -> RecoveryItem:
    """Operator replay: failed|dlq -> replayed; the delivery worker then re-delivers it."""
    item = recovery_item_get(integration_id=integration_id, item_id=item_id, for_update=True)
    if item.status not in RecoveryItem.REPLAYABLE:
        raise RecoveryReplayConflict(
            f"Only failed or dlq entries can be replayed; this one is {item.status}.",
            details={"status": item.status, "allowed_statuses": list(RecoveryItem.REPLAYABLE)},
        )
    if not item.integration.accepts_deliveries:
        raise RecoveryReplayConflict(
            "The integration is paused; resume it before replaying (containment).",
            details={"status": item.status, "integration_paused": True},
        )
    before = item.state()
    item.replay(request_id=current_request_id(), traceparent=current_traceparent())
    item.save()
    audit.record(
        EVENT_REPLAYED, obj=item, before=before, after=item.state(), actor=actor, reason=reason
    )
    announce_deliveries("replay")
    return item


class PayloadInvalid(IntegrationInvalidPayload):
    default_message = "The edited payload does not match the item's schema."


def payload_schema_for(item: RecoveryItem) -> dict[str, Any]:
    """The integration's schema, or one derived from the original: same keys, same types."""
    if item.integration.payload_schema:
        return item.integration.payload_schema
    if not isinstance(item.payload, dict):
        return {}
    json_types = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }
    return {
        "type": "object",
        "required": sorted(item.payload),
        "properties": {
            key: {"type": json_types.get(type(value), "string")}
            for key, value in item.payload.items()
        },
    }


def payload_diff(original: Any, edited: Any) -> str:
    def pretty(value: Any) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()

    return "\n".join(
        difflib.unified_diff(pretty(original), pretty(edited), "original", "edited", lineterm="")
    )


@transaction.atomic
def recovery_item_edit_and_replay(
    *, integration_id: int, item_id: int, payload: Any, actor: audit.Actor, reason: str
) -> tuple[RecoveryItem, PayloadEdit]:
    """Correct the payload, then replay. The original payload and snapshots stay as they were;
    the edit, its diff and who made it are stored and audited."""
    item = recovery_item_get(integration_id=integration_id, item_id=item_id, for_update=True)
    errors = sorted(
        f"{'/'.join(map(str, error.path)) or '(root)'}: {error.message}"
        for error in Draft202012Validator(payload_schema_for(item)).iter_errors(payload)
    )
    if errors:
        raise PayloadInvalid(details={"fields": {"payload": errors}})
    current = item.payload_override if item.payload_override is not None else item.payload
    edit = PayloadEdit.objects.create(
        item=item,
        original_payload=item.payload,
        edited_payload=payload,
        diff=payload_diff(current, payload),
        edited_by=audit.actor_label(actor),
        reason=reason,
    )
    item.payload_override = payload
    item.edit_count += 1
    item.save(update_fields=["payload_override", "edit_count", "updated_at"])
    audit.record(
        f"{EVENT_PREFIX}.payload_edited",
        obj=item,
        before={"payload": current},
        after={"payload": payload},
        actor=actor,
        reason=reason,
        metadata={"edit_id": edit.pk, "diff": edit.diff},
    )
    item = recovery_item_replay(
        integration_id=integration_id, item_id=item_id, actor=actor, reason=reason
    )
    return item, edit
