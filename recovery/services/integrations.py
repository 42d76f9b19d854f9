"""The integration catalog's writes: create, change, pause and resume, validated and audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from jsonschema import Draft202012Validator

from opsconsole import audit
from opsconsole.outbound import endpoint_url_problem
from recovery.errors import (
    IntegrationInvalidPayload,
    IntegrationNotFound,
)
from recovery.models import (
    Integration,
)
from recovery.services.delivery import wake_delivery_worker

INTEGRATION_EDITABLE_FIELDS = ("name", "endpoint_url", "payload_schema", "enabled")


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
    schema = changes.get("payload_schema")
    if schema is not None:
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as exc:  # jsonschema raises SchemaError; any failure means invalid
            problems["payload_schema"] = f"Not a valid JSON Schema: {str(exc)[:200]}"
    if problems:
        raise IntegrationInvalidPayload("The integration is invalid.", details=problems)


def integration_state_full(integration: Integration) -> dict[str, Any]:
    return {name: getattr(integration, name) for name in INTEGRATION_EDITABLE_FIELDS} | {
        "paused": integration.paused
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
) -> Integration:
    integration_check_fields(
        {"name": name, "endpoint_url": endpoint_url, "payload_schema": payload_schema}
    )
    integration = Integration.objects.create(
        name=name, endpoint_url=endpoint_url, payload_schema=payload_schema, enabled=enabled
    )
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
    integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
    if integration is None:
        raise IntegrationNotFound()
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
    integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
    if integration is None:
        raise IntegrationNotFound()
    before = _integration_state(integration)
    integration.paused = paused
    integration.paused_reason = reason if paused else ""
    integration.save(update_fields=["paused", "paused_reason", "updated_at"])
    audit.record(
        f"platform.integration.{'paused' if paused else 'resumed'}",
        obj=integration,
        before=before,
        after=_integration_state(integration),
        actor=actor,
        reason=reason,
    )
    if not paused:
        transaction.on_commit(wake_delivery_worker)
    return integration
