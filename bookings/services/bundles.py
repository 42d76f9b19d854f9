"""Bundles: resources sold together at one price, and their guardrail
(docs/runbooks/incident-response.md).

The bundle guardrail worker checks each bundle against its parts every BUNDLE_CHECK_MINUTES:
a part that is closed, or whose price moved since the bundle was priced, stops the bundle
selling, with a critical alert and an entry in the failure inbox. It sells again when an
operator fixes it (reopens the part, or accepts its parts' current prices) or overrides the
finding; an override holds only while the parts stay as the operator saw them."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bookings.models import Bundle, BundlePart, Resource
from opsconsole.evidence import audit
from opsconsole.http.errors import Conflict
from opsconsole.monitoring.alerts import alert_raise, alerts_settle

GUARDRAIL_ACTOR = "bundle_guardrail_worker"


class GuardrailOutcome(StrEnum):
    SELLING = "selling"  # checked, sound
    STOPPED = "stopped"  # stopped now
    STILL_STOPPED = "still_stopped"
    RESUMED = "resumed"  # its finding is gone
    OVERRIDDEN = "overridden"  # sells under an operator's override
    ALREADY_DONE = "already_done"  # lease lost


class BundleNotStopped(Conflict):
    code = "BKG-409-BUNDLE-NOT-STOPPED"
    default_message = "Only a stopped bundle can be overridden."


def bundle_findings(bundle: Bundle) -> list[tuple[str, str]]:
    """(code, message) for each part that breaks the bundle, in part order."""
    findings = []
    for part in bundle.parts.select_related("resource").order_by("id"):
        resource = part.resource
        if not resource.active:
            findings.append(("PART_CLOSED", f"{resource.name} is closed"))
        elif part.priced_at is not None and resource.price != part.priced_at:
            findings.append(
                (
                    "PART_REPRICED",
                    f"{resource.name} costs {resource.price} now, {part.priced_at} when the "
                    "bundle was priced",
                )
            )
    return findings


def _parts_fingerprint(bundle: Bundle) -> str:
    """What an override was given for: each part's state as the operator saw it."""
    parts = bundle.parts.select_related("resource").order_by("id")
    seen = "|".join(f"{p.resource_id}:{p.resource.active}:{p.resource.price}" for p in parts)
    return hashlib.sha256(seen.encode()).hexdigest()[:32]


def bundle_check(*, bundle_id: int, lease_owner: str) -> GuardrailOutcome:
    """The guardrail's step for one claimed bundle."""
    with transaction.atomic():
        bundle = (
            Bundle.objects.select_for_update().filter(pk=bundle_id, lease_owner=lease_owner).first()
        )
        if bundle is None:
            return GuardrailOutcome.ALREADY_DONE
        now = timezone.now()
        bundle.checked_at = now
        bundle.next_check_at = now + timedelta(minutes=settings.BUNDLE_CHECK_MINUTES)
        bundle.release_lease()
        outcome = _judge(bundle, bundle_findings(bundle), actor=GUARDRAIL_ACTOR)
        bundle.save()
        return outcome


def _judge(bundle: Bundle, findings: list[tuple[str, str]], *, actor: str) -> GuardrailOutcome:
    before = bundle.state()
    if findings and bundle.override_fingerprint == _parts_fingerprint(bundle):
        return GuardrailOutcome.OVERRIDDEN
    if findings:
        code = findings[0][0]
        reason = "; ".join(message for _, message in findings)
        if bundle.status == Bundle.Status.STOPPED and bundle.stop_reason == reason:
            return GuardrailOutcome.STILL_STOPPED
        first_stop = bundle.status == Bundle.Status.SELLING
        bundle.status = Bundle.Status.STOPPED
        bundle.stop_code, bundle.stop_reason = code, reason
        bundle.override_fingerprint = bundle.override_reason = bundle.overridden_by = ""
        if first_stop:
            bundle.stopped_at = timezone.now()
        else:
            # Still stopped, for another reason: the open alert says the old one.
            alerts_settle(obj=bundle, reason=f"its finding changed: {reason}")
        alert_raise(
            kind="bundle-stopped",
            severity="critical",
            obj=bundle,
            message=f"Bundle {bundle.name} stopped selling: {reason}",
            details={"stop_code": code},
        )
        audit.record(
            "booking.bundle.stopped",
            obj=bundle,
            before=before,
            after=bundle.state(),
            actor=actor,
            metadata={"findings": [code for code, _ in findings]},
        )
        return GuardrailOutcome.STOPPED
    if bundle.status == Bundle.Status.STOPPED or bundle.override_fingerprint:
        bundle.status = Bundle.Status.SELLING
        bundle.stop_code = bundle.stop_reason = ""
        bundle.stopped_at = None
        bundle.override_fingerprint = bundle.override_reason = bundle.overridden_by = ""
        audit.record(
            "booking.bundle.resumed",
            obj=bundle,
            before=before,
            after=bundle.state(),
            actor=actor,
            reason="its parts are sound again",
        )
        alerts_settle(obj=bundle, reason="the bundle's parts are sound again")
        return GuardrailOutcome.RESUMED
    return GuardrailOutcome.SELLING


@transaction.atomic
def bundle_override(*, bundle_id: int, actor: audit.Actor, reason: str) -> Bundle:
    """Sell a stopped bundle despite its finding, while its parts stay as they are now."""
    bundle = Bundle.objects.select_for_update().get(pk=bundle_id)
    if bundle.status != Bundle.Status.STOPPED:
        raise BundleNotStopped(details={"status": bundle.status})
    before = bundle.state()
    bundle.status = Bundle.Status.SELLING
    bundle.override_fingerprint = _parts_fingerprint(bundle)
    bundle.override_reason = reason
    bundle.overridden_by = audit.actor_label(actor)
    bundle.save()
    audit.record(
        "booking.bundle.overridden",
        obj=bundle,
        before=before,
        after=bundle.state(),
        actor=actor,
        reason=reason,
    )
    alerts_settle(obj=bundle, reason=f"overridden by {bundle.overridden_by}: {reason}")
    return bundle


@transaction.atomic
def bundle_accept_part_prices(
    *, bundle_id: int, actor: audit.Actor, reason: str, price: Decimal | None = None
) -> Bundle:
    """The fix for a repriced part: its parts' prices now become the ones the bundle was
    priced at (and the bundle's own price becomes `price`, when given), then it is checked
    at once."""
    bundle = Bundle.objects.select_for_update().get(pk=bundle_id)
    before = {**bundle.state(), "price": str(bundle.price)}
    for part in bundle.parts.select_related("resource"):
        BundlePart.objects.filter(pk=part.pk).update(priced_at=part.resource.price)
    if price is not None:
        bundle.price = price
    audit.record(
        "booking.bundle.repriced",
        obj=bundle,
        before=before,
        after={**bundle.state(), "price": str(bundle.price)},
        actor=actor,
        reason=reason,
    )
    _judge(bundle, bundle_findings(bundle), actor=audit.actor_label(actor))
    bundle.checked_at = timezone.now()
    bundle.save()
    return bundle


def bundles_of(resource_id: int) -> list[Bundle]:
    """The bundles a resource is a part of (a change to it is judged by their guardrail)."""
    return list(Bundle.objects.filter(parts__resource_id=resource_id).order_by("name"))


@transaction.atomic
def bundle_create(
    *, name: str, price: Decimal, resource_ids: list[int], actor: audit.Actor, reason: str
) -> Bundle:
    """A bundle priced from its parts' prices now; checked on the guardrail's next round."""
    bundle = Bundle.objects.create(name=name, price=price, next_check_at=timezone.now())
    for resource in Resource.objects.filter(pk__in=resource_ids).order_by("pk"):
        BundlePart.objects.create(bundle=bundle, resource=resource, priced_at=resource.price)
    audit.record(
        "booking.bundle.created",
        obj=bundle,
        after={**bundle.state(), "price": str(price), "parts": sorted(resource_ids)},
        actor=actor,
        reason=reason,
    )
    return bundle
