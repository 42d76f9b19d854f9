from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from bookings import nudges, services
from bookings.models import (
    Booking,
    BookingHold,
    Bundle,
    BundlePart,
    CatalogChange,
    ContactPreference,
    Fulfillment,
    Nudge,
    Referral,
    RefundFailure,
    Resource,
    WaitlistEntry,
)
from bookings.services import bundles, catalog, fulfilment
from opsconsole.access.personal_data import PersonalFieldsAdmin
from opsconsole.admin.actions import destructive_action
from opsconsole.admin.mixins import (
    ReadOnlyAdmin,
    ServiceSavedAdmin,
    SupportStaffAccess,
    SupportStaffInline,
)


@admin.register(Resource)
class ResourceAdmin(SupportStaffAccess, ServiceSavedAdmin, admin.ModelAdmin):
    list_display = ("name", "active", "price", "bookable_until", "created_at")
    list_filter = ("active",)
    search_fields = ("name",)
    service_fields = services.RESOURCE_EDITABLE_FIELDS

    def check_through_service(self, changes: dict[str, Any]) -> None:
        services.resource_check_fields(changes)

    def save_through_service(
        self,
        request: HttpRequest,
        obj: Resource,
        changes: dict[str, Any],
        change: bool,
        reason: str,
    ) -> Resource:
        if change:
            return services.resource_update(
                resource_id=obj.pk, changes=changes, actor=request.user, reason=reason
            )
        return services.resource_create(**changes, actor=request.user, reason=reason)


@admin.register(BookingHold)
class BookingHoldAdmin(SupportStaffAccess, ReadOnlyAdmin):
    list_display = ("id", "resource", "start_time", "end_time", "status", "expires_at", "holder")
    list_filter = ("status", "occupies_slot", "resource")
    search_fields = ("=id", "holder__username")
    list_select_related = ("resource", "holder")
    show_full_result_count = False


class NeedsReviewFilter(admin.SimpleListFilter):
    title = "needs review"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("cancelling", "Stuck in CANCELLING")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "cancelling":
            return queryset.filter(status=Booking.Status.CANCELLING)
        return queryset


class RefundFailureInline(PersonalFieldsAdmin, SupportStaffInline, admin.TabularInline):
    """The booking's refund failures, which the stuck-cancellation runbook reads below the
    booking; the error masked as on the refund failures' own pages."""

    model = RefundFailure
    personal_fields = {"error": "text"}
    fields = ("status", "refund_id", "error", "resolution", "resolved_by", "created_at")
    readonly_fields = fields


@admin.register(Booking)
class BookingAdmin(SupportStaffAccess, ReadOnlyAdmin):
    list_display = (
        "id",
        "resource",
        "start_time",
        "status",
        "cancellation_step",
        "cancellation_error",
        "customer",
        "updated_at",
    )
    list_filter = (NeedsReviewFilter, "status", "resource")
    search_fields = ("=id", "customer__username", "=payment_id")
    list_select_related = ("resource", "customer")
    show_full_result_count = False
    inlines = [RefundFailureInline]
    actions = ["resolve_complete", "resolve_restore", "check_in", "cancel"]

    @destructive_action(
        description="Cancel (staff, with a reason)…",
        title="Cancel bookings",
        legal=lambda rows: rows.filter(
            status__in=[Booking.Status.CONFIRMED, Booking.Status.CHECKED_IN]
        ),
        legal_description="confirmed or checked-in bookings, also after their start; the "
        "slot is released and a paid booking refunded (by card, or owed when paid offline)",
    )
    def cancel(self, request: HttpRequest, pk: int, reason: str) -> None:
        user = request.user
        if not isinstance(user, AbstractBaseUser):  # the admin lets only staff in
            raise PermissionDenied
        services.booking_cancel(booking_id=pk, actor=user, reason=reason)

    @destructive_action(
        description="Check the customer in…",
        title="Check in",
        legal=lambda rows: rows.filter(status=Booking.Status.CONFIRMED),
        legal_description="confirmed bookings whose check-in window is open (from "
        "CHECK_IN_OPENS_MINUTES before the start until the end)",
    )
    def check_in(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.booking_check_in(booking_id=pk, actor=request.user, reason=reason)

    @destructive_action(
        description="Resolve stuck cancellation: complete it (slot released)…",
        title="Complete cancellations",
        legal=lambda rows: rows.filter(status=Booking.Status.CANCELLING),
        legal_description="bookings stuck in CANCELLING; they become CANCELLED, the slot is "
        "released and open refund failures are marked resolved (refund handled manually)",
    )
    def resolve_complete(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.booking_cancellation_resolve(
            booking_id=pk, resolution="complete", actor=request.user, reason=reason
        )

    @destructive_action(
        description="Resolve stuck cancellation: restore the booking…",
        title="Restore bookings",
        legal=lambda rows: rows.filter(status=Booking.Status.CANCELLING),
        legal_description="bookings stuck in CANCELLING; they become CONFIRMED again and keep "
        "their slot",
    )
    def resolve_restore(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.booking_cancellation_resolve(
            booking_id=pk, resolution="restore", actor=request.user, reason=reason
        )


@admin.register(RefundFailure)
class RefundFailureAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"error": "text"}
    list_display = ("id", "booking", "refund_id", "status", "error", "created_at", "resolved_by")
    list_filter = ("status",)
    search_fields = ("=booking__id", "=refund_id")
    show_full_result_count = False


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"email": "email"}
    list_display = ("id", "resource", "email", "start_time", "end_time", "status", "notified_at")
    list_filter = ("status", "resource")
    search_fields = ("email",)


@admin.register(Fulfillment)
class FulfillmentAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    """Paid bookings' fulfilments (docs/runbooks/incident-response.md). The entry code is a
    door credential: operators read it on the record's page to give it at the desk (a walk-in
    with no email address); viewers see it masked, and no list shows it."""

    personal_fields = {"entry_code": "secret"}
    list_display = (
        "id",
        "booking",
        "customer",
        "status",
        "attempt_count",
        "next_retry_at",
        "failure_code",
        "code_issued",
        "fulfilled_at",
    )
    list_filter = ("status", "failure_code")
    # The desk looks a walk-in up by their name or username.
    search_fields = (
        "=booking__id",
        "booking__customer__username",
        "booking__customer__first_name",
        "booking__customer__last_name",
    )
    list_select_related = ("booking__customer",)
    show_full_result_count = False
    exclude = ("lease_owner", "lease_expires_at")
    actions = ["retry"]

    @admin.display(description="customer")
    def customer(self, obj: Fulfillment) -> str:
        return str(obj.booking.customer)

    @admin.display(boolean=True, description="entry code issued")
    def code_issued(self, obj: Fulfillment) -> bool:
        return bool(obj.entry_code)

    @destructive_action(
        description="Retry fulfilment…",
        title="Retry fulfilments",
        button="Retry fulfilment…",
        legal=lambda rows: rows.filter(status=Fulfillment.Status.PARKED),
        legal_description="parked fulfilments; each is due at once with a fresh retry budget "
        "(nothing is sent twice: a fulfilled booking is never fulfilled again)",
    )
    def retry(self, request: HttpRequest, pk: int, reason: str) -> None:
        fulfilment.fulfilment_retry(fulfillment_id=pk, actor=request.user, reason=reason)


@admin.register(CatalogChange)
class CatalogChangeAdmin(SupportStaffAccess, ServiceSavedAdmin, admin.ModelAdmin):
    """Scheduled catalog changes: scheduled here with a reason, applied by the catalog
    scheduler at their time, paused, resumed, retried or cancelled by the actions."""

    service_fields = ("resource", "kind", "apply_at", "bookable_until", "price")
    list_display = (
        "id",
        "resource",
        "kind",
        "apply_at",
        "status",
        "attempt_count",
        "failure_code",
        "last_error",
        "applied_at",
    )
    list_filter = ("status", "kind", "resource")
    search_fields = ("=id", "resource__name")
    list_select_related = ("resource",)
    actions = ["pause", "resume", "retry", "cancel"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.with_reason(request, obj, self.service_fields)
        return (
            *self.service_fields,
            "status",
            "attempt_count",
            "next_retry_at",
            "failure_code",
            "last_error",
            "applied_at",
            "scheduled_by",
            "reason",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A scheduled change is not edited: cancel it and schedule another (both audited).
        return obj is None and super().has_change_permission(request, obj)

    def check_through_service(self, changes: dict[str, Any]) -> None:
        catalog.catalog_change_check(
            kind=changes.get("kind", ""),
            bookable_until=changes.get("bookable_until"),
            price=changes.get("price"),
        )

    def save_through_service(
        self,
        request: HttpRequest,
        obj: CatalogChange,
        changes: dict[str, Any],
        change: bool,
        reason: str,
    ) -> CatalogChange:
        resource = changes.pop("resource")
        scheduled = catalog.catalog_change_schedule(
            resource_id=resource.pk, **changes, actor=request.user, reason=reason
        )
        judged = bundles.bundles_of(resource.pk)
        if judged and scheduled.kind in (
            CatalogChange.Kind.PRICE_CHANGE,
            CatalogChange.Kind.CLOSE,
        ):
            names = ", ".join(bundle.name for bundle in judged)
            fix = (
                "its parts' prices are accepted"
                if scheduled.kind == CatalogChange.Kind.PRICE_CHANGE
                else f"{resource.name} is reopened (schedule a Reopen too)"
            )
            messages.warning(
                request,
                f"{resource.name} is a part of {names}: when this change applies, the bundle "
                f"guardrail stops selling it until {fix}, or it is overridden (Admin → "
                "Bundles).",
            )
        return scheduled

    def _move(self, request: HttpRequest, pk: int, reason: str, move: str) -> None:
        catalog.catalog_change_move(change_id=pk, move=move, actor=request.user, reason=reason)

    @destructive_action(
        description="Pause…",
        title="Pause catalog changes",
        button="Pause this change…",
        legal=lambda rows: rows.filter(
            status__in=[CatalogChange.Status.SCHEDULED, CatalogChange.Status.FAILING]
        ),
        legal_description="scheduled or failing changes; they are not applied, and hold back "
        "their resource's later changes, until resumed",
    )
    def pause(self, request: HttpRequest, pk: int, reason: str) -> None:
        self._move(request, pk, reason, "pause")

    @destructive_action(
        description="Resume…",
        title="Resume catalog changes",
        button="Resume this change…",
        legal=lambda rows: rows.filter(status=CatalogChange.Status.PAUSED),
        legal_description="paused changes; each applies at its time, or at once when that "
        "has passed",
    )
    def resume(self, request: HttpRequest, pk: int, reason: str) -> None:
        self._move(request, pk, reason, "resume")

    @destructive_action(
        description="Retry now…",
        title="Retry catalog changes",
        button="Retry this change now…",
        legal=lambda rows: rows.filter(
            status__in=[CatalogChange.Status.FAILING, CatalogChange.Status.PARKED]
        ),
        legal_description="failing or parked changes; applied on the scheduler's next run "
        "with a fresh retry budget (fix what refused them first)",
    )
    def retry(self, request: HttpRequest, pk: int, reason: str) -> None:
        self._move(request, pk, reason, "retry")

    @destructive_action(
        description="Cancel…",
        title="Cancel catalog changes",
        button="Cancel this change…",
        legal=lambda rows: rows.filter(status__in=CatalogChange.OPEN),
        legal_description="changes not yet applied; they never apply, and their resource's "
        "later changes go ahead",
    )
    def cancel(self, request: HttpRequest, pk: int, reason: str) -> None:
        self._move(request, pk, reason, "cancel")


class BundlePriceForm(forms.Form):
    new_price = forms.DecimalField(
        label="New bundle price (EUR)",
        required=False,
        min_value=Decimal("0.01"),
        max_digits=10,
        decimal_places=2,
        help_text="Empty: the bundle keeps its price.",
    )


class BundlePartInline(SupportStaffInline, admin.TabularInline):
    model = BundlePart
    fields = ("resource", "priced_at", "current_price", "open")
    readonly_fields = fields

    @admin.display(description="price now")
    def current_price(self, obj: BundlePart) -> Any:
        return obj.resource.price

    @admin.display(boolean=True, description="open")
    def open(self, obj: BundlePart) -> bool:
        return obj.resource.active


@admin.register(Bundle)
class BundleAdmin(SupportStaffAccess, ReadOnlyAdmin):
    """Bundles and their guardrail: a stopped bundle is fixed (its parts' prices accepted)
    or overridden here, with a reason."""

    list_display = ("name", "price", "status", "stop_code", "stop_reason", "checked_at")
    list_filter = ("status",)
    search_fields = ("name",)
    exclude = ("lease_owner", "lease_expires_at", "override_fingerprint")
    inlines = [BundlePartInline]
    actions = ["override", "accept_part_prices"]

    @destructive_action(
        description="Override: sell despite the finding…",
        title="Override bundle guardrail",
        button="Override: sell despite the finding…",
        legal=lambda rows: rows.filter(status=Bundle.Status.STOPPED),
        legal_description="stopped bundles; they sell again while their parts stay as they "
        "are now (a further change to a part stops them again)",
    )
    def override(self, request: HttpRequest, pk: int, reason: str) -> None:
        bundles.bundle_override(bundle_id=pk, actor=request.user, reason=reason)

    @destructive_action(
        description="Fix: accept the parts' current prices…",
        title="Accept the parts' current prices",
        button="Fix: accept the parts' current prices…",
        legal=lambda rows: rows.filter(status=Bundle.Status.STOPPED, stop_code="PART_REPRICED"),
        legal_description="bundles stopped for a repriced part; the parts' prices now become "
        "the ones each bundle was priced at (its own price stays, unless you give a new one "
        "below), it is checked at once, and sells again if nothing else is wrong",
        options=BundlePriceForm,
    )
    def accept_part_prices(
        self, request: HttpRequest, pk: int, reason: str, new_price: Decimal | None = None
    ) -> None:
        bundle = bundles.bundle_accept_part_prices(
            bundle_id=pk, actor=request.user, reason=reason, price=new_price
        )
        if bundle.status == Bundle.Status.STOPPED:
            messages.warning(
                request,
                f"{bundle.name}: its prices are accepted, but it is still stopped: "
                f"{bundle.stop_reason}. Reopen the part (Admin → Catalog changes → Add, "
                "Reopen) or override the finding.",
            )


@admin.register(Nudge)
class NudgeAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    """Loyalty and onboarding nudges, each sent once (bookings/nudges.py)."""

    personal_fields = {"recipient": "email"}
    list_display = (
        "id",
        "kind",
        "subject",
        "recipient",
        "status",
        "skip_reason",
        "attempt_count",
        "next_retry_at",
        "failure_code",
        "sent_at",
    )
    list_filter = ("status", "kind", "failure_code")
    search_fields = ("=subject", "recipient")
    exclude = ("lease_owner", "lease_expires_at")
    show_full_result_count = False
    actions = ["requeue"]

    @destructive_action(
        description="Send again (parked nudges)…",
        title="Send parked nudges again",
        button="Send again…",
        legal=lambda rows: rows.filter(status=Nudge.Status.PARKED),
        legal_description="parked nudges; each is due at once with a fresh retry budget (one "
        "that went out is never sent twice)",
    )
    def requeue(self, request: HttpRequest, pk: int, reason: str) -> None:
        nudges.nudges_requeue(nudge_ids=[pk], actor=request.user, reason=reason)


@admin.register(Referral)
class ReferralAdmin(SupportStaffAccess, ReadOnlyAdmin):
    list_display = ("id", "referrer", "referred", "created_at")
    search_fields = ("=referrer__id", "=referred__id")


@admin.register(ContactPreference)
class ContactPreferenceAdmin(SupportStaffAccess, ReadOnlyAdmin):
    list_display = ("customer", "nudges_allowed", "timezone", "changed_at")
    list_filter = ("nudges_allowed",)
