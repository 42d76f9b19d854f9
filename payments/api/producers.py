"""What producers create through payments: hosted checkout sessions (the billing route, also
for opening one: docs/runbooks/hosted-session-recovery.md) and vouchers
(docs/runbooks/station-redeem-anomalies.md)."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.permissions import CanProduce
from opsconsole.http import inputs
from opsconsole.http.idempotency import idempotent
from payments import services, vouchers
from payments.api.views import HostedSessionOutputSerializer, VoucherOutputSerializer
from payments.errors import PaymentsInvalidPayload


class HostedSessionOpenApi(APIView):
    """Open a hosted checkout session: the provider's link (Stripe Checkout when
    PAYMENTS_CHECKOUT_PROVIDER=stripe), then the session the recovery automation watches."""

    error_prefix = "PAY"
    permission_classes = [CanProduce]

    class InputSerializer(serializers.Serializer):
        reference = serializers.CharField(max_length=100)
        amount = serializers.CharField(max_length=20, help_text="Decimal, e.g. 49.90.")
        currency = serializers.CharField(max_length=3)
        customer_email = serializers.EmailField(required=False, allow_blank=True)
        customer_phone = serializers.CharField(required=False, allow_blank=True, max_length=32)

    @extend_schema(request=InputSerializer, responses={201: HostedSessionOutputSerializer})
    @idempotent
    def post(self, request: Request) -> Response:
        data = inputs.validated(self.InputSerializer, request.data, PaymentsInvalidPayload)
        session = services.hosted_session_open(**data, actor=request.user)
        return Response(HostedSessionOutputSerializer(session).data, status=status.HTTP_201_CREATED)


class VoucherIssueApi(APIView):
    error_prefix = "PAY"
    permission_classes = [CanProduce]

    class InputSerializer(serializers.Serializer):
        description = serializers.CharField(max_length=200)
        value = serializers.DecimalField(
            max_digits=12,
            decimal_places=2,
            min_value=Decimal("0.01"),
            max_value=Decimal("100000"),
        )
        station_scope = serializers.RegexField(
            vouchers.STATION_SCOPE,
            required=False,
            max_length=500,
            help_text="Station ids separated by commas, or * for every station.",
        )
        customer_email = serializers.EmailField(required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={201: VoucherOutputSerializer})
    @idempotent
    def post(self, request: Request) -> Response:
        data = inputs.validated(self.InputSerializer, request.data, PaymentsInvalidPayload)
        voucher = vouchers.voucher_issue(**data, actor=request.user, reason="issued by a producer")
        return Response(VoucherOutputSerializer(voucher).data, status=status.HTTP_201_CREATED)
