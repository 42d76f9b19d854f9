"""Bookable resources: created and changed through audited services."""

from __future__ import annotations

from django.db import transaction

from bookings.errors import (
    BookingInvalidPayload,
    ResourceNotFound,
)
from bookings.models import Resource
from opsconsole.evidence import audit

RESOURCE_EDITABLE_FIELDS = ("name", "active")


def resource_check_fields(changes: dict[str, object]) -> None:
    problems = {
        n: "This field cannot be changed." for n in set(changes) - {*RESOURCE_EDITABLE_FIELDS}
    }
    if "name" in changes and not str(changes["name"] or "").strip():
        problems["name"] = "A name is required."
    if problems:
        raise BookingInvalidPayload("The resource is invalid.", details=problems)


def _resource_state(resource: Resource) -> dict[str, object]:
    return {"name": resource.name, "active": resource.active}


@transaction.atomic
def resource_create(*, name: str, active: bool = True, actor: audit.Actor, reason: str) -> Resource:
    resource_check_fields({"name": name, "active": active})
    resource = Resource.objects.create(name=name, active=active)
    audit.record(
        "booking.resource.created",
        obj=resource,
        after=_resource_state(resource),
        actor=actor,
        reason=reason,
    )
    return resource


@transaction.atomic
def resource_update(
    *, resource_id: int, changes: dict[str, object], actor: audit.Actor, reason: str
) -> Resource:
    """Rename or (de)activate a resource; holds already taken are not touched."""
    resource_check_fields(changes)
    resource = Resource.objects.select_for_update().filter(pk=resource_id).first()
    if resource is None:
        raise ResourceNotFound()
    before = _resource_state(resource)
    for name, value in changes.items():
        setattr(resource, name, value)
    resource.save(update_fields=list(changes))
    audit.record(
        "booking.resource.updated",
        obj=resource,
        before=before,
        after=_resource_state(resource),
        actor=actor,
        reason=reason,
    )
    return resource
