"""Suspending a storefront surface (docs/runbooks/incident-response.md): each surface is a
waffle switch, on unless an operator switched it off with a reason. The code serving a
surface asks `surface_served` first; a suspended surface's refusal leaves a span and a log
line, so on-call can confirm the suppression from traces or logs."""

from __future__ import annotations

from typing import Any

import structlog
import waffle
from django.db import transaction
from django.db.models import CharField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast

from opsconsole.evidence import audit
from opsconsole.models import AuditEvent
from opsconsole.monitoring.tracing import internal_span, span_traceparent
from storefront.errors import StorefrontInvalidPayload, SurfaceAlreadySwitched, SurfaceNotFound
from storefront.models import SURFACES, StorefrontSurface, Surface, surface_of_switch

logger = structlog.get_logger(__name__)

SUPPRESSED_SPAN = "storefront.surface_suppressed"
SUPPRESSED_LOG_EVENT = "storefront_surface_suppressed"
# Waffle's own note on each switch, for whoever finds it in the database.
SWITCH_NOTE = (
    "Storefront surface: {label}. While off, {while_suspended}. Flip it in Admin -> "
    "Storefront surfaces (a reason is asked, and audited)."
)


def surface_is_on(surface: Surface) -> bool:
    """The switch's state (waffle's shared cache, then the row); a missing row reads as on
    (WAFFLE_SWITCH_DEFAULT)."""
    return waffle.switch_is_active(surface.switch)


def surface_served(surface: Surface, **context: str) -> bool:
    """Whether `surface` is served to this caller. When it is suspended this is a refusal,
    and it leaves what on-call confirms suppression by: a `storefront.surface_suppressed`
    span (attributes `storefront.surface`, `storefront.switch` and `context`) and a
    `storefront_surface_suppressed` log line carrying that span's trace."""
    if surface_is_on(surface):
        return True
    attributes = {"storefront.surface": surface.name, "storefront.switch": surface.switch}
    attributes |= {f"storefront.{key}": value for key, value in context.items()}
    with internal_span(SUPPRESSED_SPAN, **attributes) as span:
        trace = {"traceparent": span_traceparent(span)} if span is not None else {}
        logger.info(
            SUPPRESSED_LOG_EVENT, surface=surface.name, switch=surface.switch, **context, **trace
        )
    return False


def _state(switch: StorefrontSurface) -> dict[str, Any]:
    surface = surface_of_switch(switch.name)
    return {
        "surface": surface.name if surface else "",
        "switch": switch.name,
        "active": switch.active,
    }


@transaction.atomic
def surface_switch_set(
    *, switch_id: int, active: bool, actor: audit.Actor, reason: str
) -> StorefrontSurface:
    """Suspend (`active=False`) or resume a storefront surface; audited as
    storefront.surface.suspended or .resumed with the reason. A surface already in that
    state (someone flipped it first) is a conflict, and nothing is written."""
    if not reason.strip():
        raise StorefrontInvalidPayload(
            "A reason is required.", details={"fields": {"reason": ["A reason is required."]}}
        )

    def flip(switch: StorefrontSurface) -> list[str]:
        if switch.active == active:
            state = "on" if active else "suspended"
            raise SurfaceAlreadySwitched(
                f"{switch} is already {state}; nothing was changed.", details=_state(switch)
            )
        switch.active = active
        return ["active", "modified"]  # waffle's save stamps `modified`

    switch = audit.audited_update(
        storefront_switches().filter(pk=switch_id),
        not_found=SurfaceNotFound,
        change=flip,
        state=_state,
        event=lambda s: f"storefront.surface.{'resumed' if s.active else 'suspended'}",
        actor=actor,
        reason=reason,
    )
    # Waffle's save forgets the cached switch once this commits (every process reads the
    # new state then); forgotten now too, for whatever reads it before the commit.
    switch.flush()
    return switch


def storefront_switches() -> QuerySet[StorefrontSurface]:
    """The switches of the storefront's surfaces (not any other waffle switch)."""
    return StorefrontSurface.objects.filter(name__in=[s.switch for s in SURFACES])


def with_last_change(switches: QuerySet[StorefrontSurface]) -> QuerySet[StorefrontSurface]:
    """Each switch with who flipped it last, when and why (`changed_by`, `changed_at`,
    `change_reason`), from its newest audit row: the (object_type, object_id, created_at)
    index answers each in one probe."""
    newest = AuditEvent.objects.filter(
        object_type=StorefrontSurface._meta.label_lower,
        object_id=Cast(OuterRef("pk"), output_field=CharField()),
    ).order_by("-created_at", "-id")
    return switches.annotate(
        changed_by=Subquery(newest.values("actor")[:1]),
        changed_at=Subquery(newest.values("created_at")[:1]),
        change_reason=Subquery(newest.values("reason")[:1]),
    )


def ensure_storefront_surfaces(switch_model: Any) -> None:
    """Create each surface's switch, on, if missing (an existing one keeps its state). Takes
    the model so the data migration can pass its historical one."""
    for surface in SURFACES:
        switch_model.objects.get_or_create(
            name=surface.switch,
            defaults={
                "active": True,
                "note": SWITCH_NOTE.format(
                    label=surface.label, while_suspended=surface.while_suspended
                ),
            },
        )
