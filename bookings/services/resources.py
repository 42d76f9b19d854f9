"""Bookable resources: created and changed through audited services."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from bookings.errors import (
    BookingInvalidPayload,
    ResourceNotFound,
)
from bookings.models import Resource
from opsconsole.evidence import audit

RESOURCE_EDITABLE_FIELDS = ("name", "active", "price", "bookable_until")


def resource_check_fields(changes: dict[str, object]) -> None:
    problems = {
        n: "This field cannot be changed." for n in set(changes) - {*RESOURCE_EDITABLE_FIELDS}
    }
    if "name" in changes and not str(changes["name"] or "").strip():
        problems["name"] = "A name is required."
    price = changes.get("price")
    if price is not None and Decimal(str(price)) <= 0:
        problems["price"] = (
            "A price is above 0 (leave it empty for a resource sold only in bundles)."
        )
    if problems:
        raise BookingInvalidPayload("The resource is invalid.", details=problems)


def _resource_state(resource: Resource) -> dict[str, object]:
    return {
        "name": resource.name,
        "active": resource.active,
        "price": str(resource.price) if resource.price is not None else None,
        "bookable_until": resource.bookable_until.isoformat() if resource.bookable_until else None,
    }


@transaction.atomic
def resource_create(
    *,
    name: str,
    active: bool = True,
    price: Decimal | None = None,
    bookable_until: datetime | None = None,
    actor: audit.Actor,
    reason: str,
) -> Resource:
    fields = {"name": name, "active": active, "price": price, "bookable_until": bookable_until}
    resource_check_fields(fields)
    resource = Resource.objects.create(**fields)
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

    def update(resource: Resource) -> list[str]:
        for name, value in changes.items():
            setattr(resource, name, value)
        return list(changes)

    return audit.audited_update(
        Resource.objects.filter(pk=resource_id),
        not_found=ResourceNotFound,
        change=update,
        state=_resource_state,
        event="booking.resource.updated",
        actor=actor,
        reason=reason,
    )
