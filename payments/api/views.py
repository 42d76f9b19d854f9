"""The billing route: regenerate a hosted checkout session, answer its recoveryState
(docs/runbooks/hosted-session-recovery.md)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.authentication import AnonymousRateLimit
from opsconsole.access.permissions import CanOperatePlatform, CanViewPlatform
from opsconsole.access.personal_data import can_see_personal_data, masked
from opsconsole.http import inputs
from opsconsole.http.idempotency import idempotent
from payments import selectors, services, vouchers, webhooks
from payments.errors import PaymentsInvalidPayload
from payments.models import HostedCheckoutSession, Voucher
from payments.stations import StationCredentialAuthentication, StationPrincipal


class HostedSessionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    status = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    checkoutUrl = serializers.CharField(source="checkout_url")
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)
    retryCount = serializers.IntegerField(source="attempt_count")
    nextRetryAt = serializers.DateTimeField(source="next_retry_at", allow_null=True)
    lastNotifiedAt = serializers.DateTimeField(source="last_notified_at", allow_null=True)
    metadata = serializers.JSONField()
    recoveryState = serializers.SerializerMethodField()

    def get_recoveryState(self, session: HostedCheckoutSession) -> dict[str, Any]:
        return selectors.hosted_session_recovery_state(session)


def _session_id(raw: str) -> int:
    return inputs.parse_id(raw, "id", PaymentsInvalidPayload)


class HostedSessionDetailApi(APIView):
    error_prefix = "PAY"
    permission_classes = [CanViewPlatform]

    @extend_schema(responses=HostedSessionOutputSerializer)
    def get(self, request: Request, session_id: str) -> Response:
        session = services.hosted_session_get(session_id=_session_id(session_id))
        data = HostedSessionOutputSerializer(session).data
        # The checkout link is a bearer link: a reader without the personal-data permission
        # sees where it leads, not the link itself.
        data["checkoutUrl"] = masked(request.user, "link", data["checkoutUrl"])
        return Response(data)


class HostedSessionRegenerateApi(APIView):
    error_prefix = "PAY"
    permission_classes = [CanOperatePlatform]

    class InputSerializer(serializers.Serializer):
        overrideNextRetryAt = serializers.DateTimeField(required=False, allow_null=True)
        automated = serializers.BooleanField(required=False, default=False)
        reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

        def validate_overrideNextRetryAt(self, value):
            if value is not None and value <= timezone.now():
                raise serializers.ValidationError("Must be in the future.")
            return value

    @extend_schema(request=InputSerializer, responses=HostedSessionOutputSerializer)
    @idempotent
    def post(self, request: Request, session_id: str) -> Response:
        pk = _session_id(session_id)
        data = inputs.validated(self.InputSerializer, request.data, PaymentsInvalidPayload)
        session = services.hosted_session_regenerate(
            session_id=pk,
            actor=request.user,
            override_next_retry_at=data.get("overrideNextRetryAt"),
            automated=data["automated"],
            reason=data.get("reason", ""),
        )
        return Response(HostedSessionOutputSerializer(session).data)


class VoucherOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    description = serializers.CharField()
    value = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.CharField()
    station_scope = serializers.CharField()
    redeemed_at = serializers.DateTimeField(allow_null=True)
    redeemed_station = serializers.CharField()


class IsStation(BasePermission):
    message = "This route takes a station credential (Authorization: Station <key>)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, StationPrincipal)


class StationRedeemApi(APIView):
    """A station redeems a voucher; send an Idempotency-Key so a retry is safe
    (docs/runbooks/station-redeem-anomalies.md).

    The station is the credential's: a `station_id` in the body must match it (older
    station apps still send one) and can never choose another station.
    """

    error_prefix = "PAY"
    authentication_classes = [StationCredentialAuthentication, AnonymousRateLimit]
    permission_classes = [IsStation]
    throttle_scope = "station_redeem"

    class InputSerializer(serializers.Serializer):
        code = serializers.CharField(max_length=32)
        station_id = serializers.CharField(max_length=100, required=False)

    @extend_schema(request=InputSerializer, responses=VoucherOutputSerializer)
    @idempotent
    def post(self, request: Request) -> Response:
        data = inputs.validated(self.InputSerializer, request.data, PaymentsInvalidPayload)
        station_id = getattr(request.user, "station_id", "")  # the station's credential
        if data.get("station_id", station_id) != station_id:
            raise PaymentsInvalidPayload(
                "station_id does not match the station credential.",
                details={"station_id": "Does not match the station credential."},
            )
        voucher = vouchers.voucher_redeem(
            code=data["code"], station_id=station_id, actor=request.user.get_username()
        )
        return Response(VoucherOutputSerializer(voucher).data)


class VoucherPreviewApi(APIView):
    """The PNG preview, or the degraded answer (`not_configured`, `timeout`, `error`) with the
    code, so a UI falls back to the code view instead of failing."""

    error_prefix = "PAY"
    permission_classes = [CanViewPlatform]

    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField()
        degraded = serializers.BooleanField()
        voucher_code = serializers.CharField()
        content_type = serializers.CharField(allow_null=True)
        image_base64 = serializers.CharField(allow_null=True)
        message = serializers.CharField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, voucher_id: str) -> Response:
        pk = inputs.parse_id(voucher_id, "voucher_id", PaymentsInvalidPayload)
        voucher = Voucher.objects.filter(pk=pk).first()
        if voucher is None:
            raise vouchers.VoucherNotFound()
        preview = vouchers.voucher_preview(voucher)
        if not can_see_personal_data(request.user):
            # The image shows the code too: without the permission, neither is sent.
            preview.update(
                voucher_code=masked(request.user, "code", preview["voucher_code"]),
                image_base64=None,
                content_type=None,
            )
        return Response(preview)


class WebhookReceivedSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    duplicate = serializers.BooleanField(required=False, help_text="This event id was processed.")
    processingFailed = serializers.BooleanField(
        required=False, help_text="Kept for a person to reprocess; Stripe need not retry."
    )
    ignored = serializers.BooleanField(required=False, help_text="A type we do not handle.")


class StripeWebhookApi(APIView):
    """Verified by signature, not by login; 200 even when processing failed
    (docs/runbooks/bookings-payments-notifications.md)."""

    error_prefix = "PAY"
    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Stripe sends from few addresses in bursts; the signature, not a rate, keeps others out.
    throttle_classes: list = []

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "Stripe-Signature",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="`t=<timestamp>,v1=<signature>` as Stripe signs each event with "
                "the endpoint's signing secret (STRIPE_WEBHOOK_SECRET).",
            )
        ],
        responses={200: WebhookReceivedSerializer},
    )
    def post(self, request: Request) -> Response:
        result = webhooks.stripe_webhook_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
        return Response(result)
