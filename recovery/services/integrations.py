"""The integration catalog's writes: create, change, pause and resume, validated and audited."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator

from opsconsole.evidence import audit
from opsconsole.outbound.guard import endpoint_url_problem
from recovery.errors import (
    IntegrationHasItems,
    IntegrationInvalidPayload,
    IntegrationNotFound,
)
from recovery.integrations.signing import new_signing_secret, rotated, secret_entry
from recovery.models import Integration, RecoveryItem
from recovery.services.delivery import announce_deliveries

INTEGRATION_EDITABLE_FIELDS = (
    "name",
    "endpoint_url",
    "payload_schema",
    "enabled",
    "event_types",
    "max_in_flight",
    "rate_per_second",
    "ordering_key_path",
    "body_format",
)
EVENT_TYPE = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")
KEY_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
LIMITS = {"max_in_flight": (1, 1000), "rate_per_second": (1, 10_000)}


def _event_types_problem(value: Any) -> str:
    if not isinstance(value, list) or not value:
        return 'A non-empty list of event types, or ["*"] for all.'
    bad = [str(name) for name in value if not isinstance(name, str) or not EVENT_TYPE.match(name)]
    if bad:
        return f"Not event types (like booking.confirmed): {', '.join(bad[:5])}."
    return ""


def _limit_problem(name: str, value: Any) -> str:
    low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"A whole number from {low} to {high}."
    return ""


def integration_check_fields(changes: dict[str, Any]) -> None:
    """Validate integration fields; raises INT-400-INVALID-PAYLOAD with field details."""
    unknown = sorted(set(changes) - set(INTEGRATION_EDITABLE_FIELDS))
    problems: dict[str, str] = {name: "This field cannot be changed." for name in unknown}
    if "name" in changes and not str(changes["name"] or "").strip():
        problems["name"] = "A name is required."
    if "endpoint_url" in changes:
        problem = endpoint_url_problem(str(changes["endpoint_url"] or ""))
        if problem:
            problems["endpoint_url"] = problem
    if "event_types" in changes and (problem := _event_types_problem(changes["event_types"])):
        problems["event_types"] = problem
    for name in LIMITS:
        if name in changes and (problem := _limit_problem(name, changes[name])):
            problems[name] = problem
    if "body_format" in changes and changes["body_format"] not in Integration.BodyFormat.values:
        problems["body_format"] = f"One of {', '.join(Integration.BodyFormat.values)}."
    path = changes.get("ordering_key_path")
    if path and (not isinstance(path, str) or not KEY_PATH.match(path)):
        problems["ordering_key_path"] = "A dotted path into the payload, like booking_id."
    schema = changes.get("payload_schema")
    if schema is not None:
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as exc:  # jsonschema raises SchemaError; any failure means invalid
            problems["payload_schema"] = f"Not a valid JSON Schema: {str(exc)[:200]}"
    if problems:
        raise IntegrationInvalidPayload("The integration is invalid.", details=problems)


def integration_state_full(integration: Integration) -> dict[str, Any]:
    """What the audit keeps: every setting, and of the secrets only how many and how old."""
    return {name: getattr(integration, name) for name in INTEGRATION_EDITABLE_FIELDS} | {
        "paused": integration.paused,
        "deleted": integration.deleted_at is not None,
        "signing_secrets": [
            {"created_at": entry["created_at"], "expires_at": entry.get("expires_at")}
            for entry in integration.signing_secrets or []
        ],
    }


@transaction.atomic
def integration_create(
    *,
    name: str,
    endpoint_url: str,
    actor: audit.Actor,
    payload_schema: dict[str, Any] | None = None,
    enabled: bool = True,
    reason: str = "",
    **settings: Any,
) -> Integration:
    """Create an integration with its first signing secret, which only this call's answer
    shows (`integration.revealed_secret`); afterwards only a rotation reveals one."""
    fields = {"name": name, "endpoint_url": endpoint_url, "payload_schema": payload_schema}
    fields |= {"event_types": ["*"]} | settings
    integration_check_fields(fields)
    if Integration.objects.filter(name=name).exists():
        raise IntegrationInvalidPayload(
            "The integration is invalid.", details={"name": "An integration has this name."}
        )
    secret = new_signing_secret()
    integration = Integration.objects.create(
        **fields, enabled=enabled, signing_secrets=[secret_entry(secret)]
    )
    integration.revealed_secret = secret  # type: ignore[attr-defined]
    audit.record(
        "platform.integration.created",
        obj=integration,
        after=integration_state_full(integration),
        actor=actor,
        reason=reason,
    )
    return integration


@transaction.atomic
def integration_update(
    *, integration_id: int, changes: dict[str, Any], actor: audit.Actor, reason: str
) -> Integration:
    """Change an integration's settings: validated, locked, audited with before and after."""
    if not reason.strip():
        raise IntegrationInvalidPayload(
            "A reason is required.", details={"reason": "A reason is required."}
        )
    integration_check_fields(changes)
    integration = _integration_locked(integration_id)
    if "name" in changes and (
        Integration.objects.filter(name=changes["name"]).exclude(pk=integration_id).exists()
    ):
        raise IntegrationInvalidPayload(
            "The integration is invalid.", details={"name": "An integration has this name."}
        )
    before = integration_state_full(integration)
    for name, value in changes.items():
        setattr(integration, name, value)
    integration.save(update_fields=[*changes, "updated_at"])
    audit.record(
        "platform.integration.updated",
        obj=integration,
        before=before,
        after=integration_state_full(integration),
        actor=actor,
        reason=reason,
    )
    return integration


def _integration_state(integration: Integration) -> dict[str, Any]:
    return {"enabled": integration.enabled, "paused": integration.paused}


@transaction.atomic
def integration_set_paused(
    *, integration_id: int, paused: bool, actor: audit.Actor, reason: str
) -> Integration:
    """Containment: a paused integration gets no deliveries and no replays until resumed."""

    def pause(integration: Integration) -> list[str]:
        integration.paused = paused
        integration.paused_reason = reason if paused else ""
        return ["paused", "paused_reason"]

    integration = audit.audited_update(
        Integration.objects.filter(pk=integration_id),
        not_found=IntegrationNotFound,
        change=pause,
        state=_integration_state,
        event=f"platform.integration.{'paused' if paused else 'resumed'}",
        actor=actor,
        reason=reason,
    )
    if not paused:
        announce_deliveries("resume")
    return integration


@transaction.atomic
def integration_rotate_secret(
    *, integration_id: int, actor: audit.Actor, reason: str
) -> Integration:
    """A new signing secret, revealed once; the old one keeps signing for 24 hours beside it."""
    integration = _integration_locked(integration_id)
    before = integration_state_full(integration)
    secret = new_signing_secret()
    integration.signing_secrets = rotated(integration.signing_secrets or [], secret)
    integration.save(update_fields=["signing_secrets", "updated_at"])
    audit.record(
        "platform.integration.secret_rotated",
        obj=integration,
        before=before,
        after=integration_state_full(integration),
        actor=actor,
        reason=reason,
    )
    integration.revealed_secret = secret  # type: ignore[attr-defined]
    return integration


@transaction.atomic
def integration_delete(*, integration_id: int, actor: audit.Actor, reason: str) -> Integration:
    """Refused while deliveries are open; otherwise disabled and kept, with its items and
    its audit trail (a delivery's history must outlive its integration)."""
    integration = _integration_locked(integration_id)
    open_items = RecoveryItem.objects.filter(
        integration=integration,
        status__in=[*RecoveryItem.DELIVERABLE, *RecoveryItem.REPLAYABLE],
    ).count()
    if open_items:
        raise IntegrationHasItems(details={"open_items": open_items})
    if integration.deleted_at is not None:
        return integration
    before = integration_state_full(integration)
    integration.enabled = False
    integration.deleted_at = timezone.now()
    integration.save(update_fields=["enabled", "deleted_at", "updated_at"])
    audit.record(
        "platform.integration.deleted",
        obj=integration,
        before=before,
        after=integration_state_full(integration),
        actor=actor,
        reason=reason,
    )
    return integration


def _integration_locked(integration_id: int) -> Integration:
    integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
    if integration is None:
        raise IntegrationNotFound()
    return integration
