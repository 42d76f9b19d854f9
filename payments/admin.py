from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone

from opsconsole.access.personal_data import PersonalFieldsAdmin
from opsconsole.admin.actions import destructive_action
from opsconsole.admin.mixins import ReadOnlyAdmin, ServiceSavedAdmin, SupportStaffAccess
from opsconsole.models import OPERATE_PERMISSION
from payments import offline_refunds, selectors, services, stations, webhooks

# The voucher pages live beside this module; importing them registers them.
from payments.admin_vouchers import VoucherAdmin, VoucherRedemptionFailureAdmin  # noqa: F401
from payments.errors import PaymentsInvalidPayload
from payments.models import (
    HostedCheckoutSession,
    Payment,
    Refund,
    StationCredential,
    StripeEvent,
    WebhookFailure,
)

RECOVERABLE = list(HostedCheckoutSession.RECOVERABLE)


class StalledFilter(admin.SimpleListFilter):
    """The runbook's first step: sessions with more than 3 attempts without a notification."""

    title = "stalled"
    parameter_name = "stalled"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Stalled (>3 attempts without notification)"), ("no", "Not stalled")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        stalled = {"status__in": RECOVERABLE, "attempts_since_notification__gt": 3}
        if self.value() == "yes":
            return queryset.filter(**stalled)
        if self.value() == "no":
            return queryset.exclude(**stalled)
        return queryset


class AutomationFilter(admin.SimpleListFilter):
    title = "automation"
    parameter_name = "automation"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("due", "Due now"),
            ("next24h", "Next retry within 24 hours"),
            ("override", "Operator override set"),
            ("exhausted", "Attempts exhausted"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        recoverable = queryset.filter(status__in=RECOVERABLE)
        if self.value() == "due":
            return recoverable.filter(next_retry_at__lte=now)
        if self.value() == "next24h":
            return recoverable.filter(
                next_retry_at__gt=now, next_retry_at__lte=now + timedelta(days=1)
            )
        if self.value() == "override":
            return queryset.filter(metadata__automation__override_next_retry_at__isnull=False)
        if self.value() == "exhausted":
            return queryset.filter(status=HostedCheckoutSession.Status.ABANDONED)
        return queryset


class RegenerateOptions(forms.Form):
    """A regeneration's choices, as the regenerate API takes them: overrideNextRetryAt,
    automated (docs/runbooks/hosted-session-recovery.md)."""

    override_next_retry_at = forms.DateTimeField(
        required=False,
        label="Next retry window (optional)",
        help_text="When the scheduler tries next, instead of its backoff (UTC, "
        "YYYY-MM-DD HH:MM; in the future).",
    )
    automated = forms.BooleanField(
        required=False,
        label="Automated (scripted cadence change)",
        help_text="Checked: the customer hears of the new link from the scheduler's next "
        "attempt. Unchecked: they are emailed and texted now.",
    )

    def clean_override_next_retry_at(self) -> datetime | None:
        # Said on the field, in the page's words, before anything runs (the service refuses
        # it too, for the API).
        window = self.cleaned_data.get("override_next_retry_at")
        if window is not None and window <= timezone.now():
            raise forms.ValidationError("Must be in the future (UTC).")
        return window


@admin.register(HostedCheckoutSession)
class HostedCheckoutSessionAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {
        "customer_email": "email",
        "customer_phone": "phone",
        "last_error": "text",
        "checkout_url": "link",
    }
    list_display = (
        "reference",
        "status",
        "attempt_count",
        "attempts_since_notification",
        "next_retry_at",
        "last_notified_at",
        "amount",
        "currency",
        "updated_at",
    )
    list_filter = (StalledFilter, AutomationFilter, "status")
    search_fields = ("=id", "reference", "customer_email", "=provider_session_id")
    show_full_result_count = False
    actions = ["regenerate_links", "notify_customers"]
    fields = (
        "reference",
        "status",
        ("amount", "currency"),
        ("customer_email", "customer_phone"),
        "checkout_url",
        ("expires_at", "provider_session_id"),
        ("attempt_count", "max_retries", "attempts_since_notification"),
        ("next_retry_at", "last_notified_at"),
        "last_error",
        ("lease_owner", "lease_expires_at", "version"),
        "recovery_timeline",
        ("created_at", "updated_at", "completed_at"),
    )
    readonly_fields = ("recovery_timeline",)

    @admin.display(description="Recovery Timeline")
    def recovery_timeline(self, obj: HostedCheckoutSession) -> str:
        return render_to_string(
            "admin/payments/recovery_timeline.html",
            {
                "entries": selectors.hosted_session_timeline(obj),
                "state": selectors.hosted_session_recovery_state(obj),
            },
        )

    @destructive_action(
        description="Regenerate checkout link and notify the customer…",
        title="Regenerate checkout links",
        button="Regenerate the link…",
        options=RegenerateOptions,
        legal=lambda rows: rows.filter(status__in=HostedCheckoutSession.REGENERABLE),
        legal_description="pending, expired, failed or abandoned sessions; each gets a new "
        "link, and the customer is emailed and texted unless the change is automated",
    )
    def regenerate_links(
        self,
        request: HttpRequest,
        pk: int,
        reason: str,
        override_next_retry_at: datetime | None = None,
        automated: bool = False,
    ) -> None:
        services.hosted_session_regenerate(
            session_id=pk,
            actor=request.user,
            reason=reason,
            override_next_retry_at=override_next_retry_at,
            automated=automated,
        )

    @destructive_action(
        description="Send the recovery notification now…",
        title="Notify customers",
        button="Send the recovery notification now…",
        legal=lambda rows: rows.filter(status__in=RECOVERABLE),
        legal_description="pending, expired or failed sessions; the current link is sent "
        "again by email and SMS",
    )
    def notify_customers(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.hosted_session_notify_customer(session_id=pk, actor=request.user, reason=reason)


@admin.register(WebhookFailure)
class WebhookFailureAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    # A partner's error text names customers as often as the payload does.
    personal_fields = {"payload": "json", "error": "text"}
    list_display = ("event_id", "event_type", "status", "error", "attempt_count", "created_at")
    list_filter = ("status", "event_type", "provider")
    search_fields = ("=event_id",)
    actions = ["reprocess_failures"]

    @destructive_action(
        description="Reprocess selected webhook events…",
        title="Reprocess webhook events",
        legal=lambda rows: rows.filter(
            status__in=(WebhookFailure.Status.PENDING_MANUAL, WebhookFailure.Status.RETRYING)
        ),
        legal_description="stored events pending manual processing or waiting for their "
        "next automatic retry; each runs now through the same handler as a live delivery",
        each=False,
    )
    def reprocess_failures(self, request: HttpRequest, rows: QuerySet, reason: str) -> int:
        done = 0
        for pk in rows.values_list("pk", flat=True):
            if webhooks.webhook_failure_reprocess(failure_id=pk, actor=request.user, reason=reason):
                done += 1
            else:
                # The error names customers as often as the payload does: it stays on the
                # record's page, masked there for whoever may not read it.
                self.message_user(
                    request,
                    f"#{pk}: it ran and its handler failed again; the new error is on its "
                    "page, where Resolve… closes it when no retry will fix it.",
                    messages.WARNING,
                )
        return done


@admin.register(StripeEvent)
class StripeEventAdmin(SupportStaffAccess, ReadOnlyAdmin):
    list_display = ("event_id", "event_type", "status", "deliveries", "received_at")
    list_filter = ("status", "event_type")
    search_fields = ("=event_id",)
    show_full_result_count = False


@admin.register(Payment)
class PaymentAdmin(SupportStaffAccess, ReadOnlyAdmin):
    list_display = ("reference", "subject", "amount", "currency", "method", "status", "created_at")
    list_filter = ("method", "status")
    search_fields = ("=reference", "=subject", "=provider_payment_id")
    show_full_result_count = False


@admin.register(Refund)
class RefundAdmin(PersonalFieldsAdmin, SupportStaffAccess, ServiceSavedAdmin, admin.ModelAdmin):
    """Refunds; one owed offline (the payment was cash, transfer or terminal) is settled here:
    an operator records how and when it was paid out, with a reason (audited)."""

    personal_fields = {"last_error": "text"}
    list_display = (
        "id",
        "payment",
        "amount",
        "status",
        "attempt_count",
        "last_error",
        "next_retry_at",
    )
    list_filter = ("status",)
    search_fields = ("=id", "=payment__reference", "=provider_refund_id")
    show_full_result_count = False
    service_fields = ("payout_method", "payout_reference", "paid_out_at")
    fields = (
        ("payment", "amount", "status"),
        ("attempt_count", "last_error", "provider_refund_id"),
        ("payout_method", "payout_reference", "paid_out_at", "paid_out_by"),
        ("requested_by", "created_at", "completed_at"),
        "refund_reason",
    )
    # `reason` on this form is the operator's reason for the change (audited, added while the
    # page can save), not the refund's own reason, which `refund_reason` shows.
    exclude = ("reason",)

    @admin.display(description="why the refund was requested")
    def refund_reason(self, obj: Refund) -> str:
        return obj.reason

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # One labelled box in the console's one date format, not the admin's split date and
        # time inputs (whose second box has no label a screen reader or a support
        # agent can name).
        if db_field.name == "paid_out_at":
            return forms.DateTimeField(
                required=False,
                label="Paid out at",
                widget=forms.DateTimeInput(attrs={"placeholder": "YYYY-MM-DD HH:MM"}),
                help_text="When the money reached the customer "
                f"({timezone.get_current_timezone_name()}, YYYY-MM-DD HH:MM).",
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        names = [field.name for field in Refund._meta.fields if field.name != "reason"]
        names.append("refund_reason")
        if self._settleable(obj):
            return [name for name in names if name not in self.service_fields]
        return names

    @staticmethod
    def _settleable(obj: Any) -> bool:
        return obj is not None and obj.status == Refund.Status.OWED

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not self._settleable(obj):
            return False
        return super().has_change_permission(request, obj)

    def check_through_service(self, changes: dict[str, Any]) -> None:
        problems = offline_refunds.payout_problems(
            method=changes.get("payout_method", ""), paid_out_at=changes.get("paid_out_at")
        )
        if problems:
            raise offline_refunds.PayoutInvalid(
                "The payout record is incomplete.", details=problems
            )

    def save_through_service(
        self, request: HttpRequest, obj: Refund, changes: dict[str, Any], change: bool, reason: str
    ) -> Refund:
        return offline_refunds.refund_settle_offline(
            refund_id=obj.pk,
            method=changes.get("payout_method", ""),
            reference=changes.get("payout_reference", ""),
            paid_out_at=changes.get("paid_out_at"),
            actor=request.user,
            reason=reason,
        )


@admin.register(StationCredential)
class StationCredentialAdmin(SupportStaffAccess, ServiceSavedAdmin, admin.ModelAdmin):
    """Stations' API credentials: issued here (the key is shown once) and revoked with a
    reason. Only the key's hash is kept."""

    list_display = ("station_id", "label", "key_prefix", "active", "created_by", "last_used_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("=station_id", "=key_prefix", "label")
    service_fields = ("station_id", "label")
    actions = ["revoke_credentials"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return (
            "station_id",
            "label",
            "key_prefix",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "revoked_by",
            "revoked_reason",
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("station_id", "label", "reason")
        return self.get_readonly_fields(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(OPERATE_PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(boolean=True)
    def active(self, obj: StationCredential) -> bool:
        return obj.active

    def check_through_service(self, changes: dict[str, Any]) -> None:
        if not str(changes.get("station_id", "")).strip():
            raise PaymentsInvalidPayload(details={"station_id": "A station id is required."})

    def save_through_service(
        self,
        request: HttpRequest,
        obj: StationCredential,
        changes: dict[str, Any],
        change: bool,
        reason: str,
    ) -> StationCredential:
        credential, key = stations.station_credential_issue(
            **changes, actor=request.user, reason=reason
        )
        self.message_user(
            request,
            f"Station {credential.station_id}'s key, shown only now: {key}",
            messages.WARNING,
        )
        return credential

    @destructive_action(
        description="Revoke selected credentials…",
        title="Revoke station credentials",
        legal=lambda rows: rows.filter(revoked_at__isnull=True),
        legal_description="active credentials; the station can no longer redeem with them",
    )
    def revoke_credentials(self, request: HttpRequest, pk: int, reason: str) -> None:
        stations.station_credential_revoke(credential_id=pk, actor=request.user, reason=reason)
