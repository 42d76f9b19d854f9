from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from bookings import services
from bookings.models import Booking, BookingHold, RefundFailure, Resource, WaitlistEntry
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
    list_display = ("name", "active", "created_at")
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
