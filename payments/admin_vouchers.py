"""Vouchers in the admin: read-only but for an issued voucher's station scope (saved through
the audited service with a reason), void and replace, and the refused redemptions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from opsconsole.access.personal_data import PersonalFieldsAdmin, shown, visible_on_this_page
from opsconsole.admin.actions import destructive_action
from opsconsole.admin.mixins import ReadOnlyAdmin, ServiceSavedAdmin, SupportStaffAccess
from payments import vouchers
from payments.errors import PaymentsInvalidPayload
from payments.models import Voucher, VoucherRedemptionFailure


@admin.register(Voucher)
class VoucherAdmin(PersonalFieldsAdmin, SupportStaffAccess, ServiceSavedAdmin, admin.ModelAdmin):
    """Read-only but for the station scope of an issued voucher: the station runbook's fix
    for a scope mismatch, saved through the audited service with a reason."""

    personal_fields = {"code": "code", "customer_email": "email"}
    service_fields = ("station_scope",)
    list_display = ("code", "status", "value", "station_scope", "redeemed_station", "redeemed_at")
    list_filter = ("status",)
    search_fields = ("=code", "customer_email")
    show_full_result_count = False
    actions = ["void_vouchers", "replace_vouchers"]
    fields = (
        "code",
        "status",
        ("value", "currency"),
        "description",
        "station_scope",
        "customer_email",
        ("redeemed_station", "redeemed_at"),
        "void_reason",
        "replaces",
        "preview",
        "issued_at",
    )
    readonly_fields = ("preview",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        names = [name for name in self.fields if isinstance(name, str)]
        names += [name for group in self.fields if isinstance(group, tuple) for name in group]
        if obj is not None and obj.status == Voucher.Status.ISSUED:
            names.remove("station_scope")
        return names

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # vouchers are issued by the service (API, replace action)

    def check_through_service(self, changes: dict[str, Any]) -> None:
        if problem := vouchers.station_scope_problem(changes.get("station_scope", "*")):
            raise PaymentsInvalidPayload(details={"station_scope": problem})

    def save_through_service(
        self, request: HttpRequest, obj: Voucher, changes: dict[str, Any], change: bool, reason: str
    ) -> Voucher:
        return vouchers.voucher_rescope(
            voucher_id=obj.pk,
            station_scope=changes["station_scope"],
            actor=request.user,
            reason=reason,
        )

    @admin.display(description="Preview")
    def preview(self, obj: Voucher) -> str:
        preview = vouchers.voucher_preview(obj)
        if not visible_on_this_page():
            # The image shows the code too: without the permission, neither is shown.
            preview.update(
                voucher_code=shown("code", preview["voucher_code"]),
                image_base64=None,
                content_type=None,
                degraded=True,
                message="masked: needs platform.view_personal_data",
            )
        return render_to_string("admin/payments/voucher_preview.html", {"preview": preview})

    @destructive_action(
        description="Void selected vouchers…",
        title="Void vouchers",
        legal=lambda rows: rows.exclude(status=Voucher.Status.VOID),
        legal_description="vouchers not already void; they can no longer be redeemed",
    )
    def void_vouchers(self, request: HttpRequest, pk: int, reason: str) -> None:
        vouchers.voucher_void(voucher_id=pk, actor=request.user, reason=reason)

    @destructive_action(
        description="Void and issue a replacement…",
        title="Replace vouchers",
        legal=lambda rows: rows.filter(replacement__isnull=True),
        legal_description="vouchers without a replacement yet; each is voided and a new "
        "code with the same value and station scope is issued",
    )
    def replace_vouchers(self, request: HttpRequest, pk: int, reason: str) -> None:
        replacement = vouchers.voucher_replace(voucher_id=pk, actor=request.user, reason=reason)
        # Where the new code is (its page shows it, masked for whoever may not read it):
        # the customer is waiting for it.
        self.message_user(
            request,
            format_html(
                '#{}: replaced by <a href="{}">voucher #{}</a> ({} {}); give the customer '
                "its code from there.",
                pk,
                reverse("admin:payments_voucher_change", args=[replacement.pk]),
                replacement.pk,
                replacement.value,
                replacement.currency,
            ),
            messages.SUCCESS,
        )


@admin.register(VoucherRedemptionFailure)
class VoucherRedemptionFailureAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"code": "code", "message": "text"}
    list_display = ("created_at", "code", "station_id", "error_code", "actor")
    list_filter = ("error_code",)
    search_fields = ("=code", "station_id", "=request_id")
    show_full_result_count = False
