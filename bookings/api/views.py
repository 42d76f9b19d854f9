"""The booking routes: holds, confirmation, cancellation
(docs/runbooks/bookings-payments-notifications.md)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bookings import services
from bookings.errors import BookingInvalidPayload
from opsconsole.access.permissions import (
    CanBook,
    CanBookOrOperate,
    CanOperatePlatform,
    signed_in_user,
)
from opsconsole.http import inputs
from opsconsole.http.idempotency import idempotent
from payments.errors import PaymentsInvalidPayload
from payments.models import Payment


class HoldOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    resource_id = serializers.IntegerField()
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()


class BookingOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    hold_id = serializers.IntegerField()
    resource_id = serializers.IntegerField()
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()
    status = serializers.CharField()
    cancellation_step = serializers.CharField()
    cancelled_at = serializers.DateTimeField(allow_null=True)
    payment_status = serializers.CharField()


class BookingHoldCreateApi(APIView):
    error_prefix = "BKG"
    permission_classes = [CanBook]

    class InputSerializer(serializers.Serializer):
        resource_id = serializers.IntegerField(min_value=1, max_value=2**62)
        start_time = serializers.DateTimeField()
        end_time = serializers.DateTimeField()

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            if data["start_time"] <= timezone.now():
                raise serializers.ValidationError({"start_time": ["Must be in the future."]})
            if data["end_time"] <= data["start_time"]:
                raise serializers.ValidationError({"end_time": ["Must be after start_time."]})
            if data["end_time"] - data["start_time"] > timedelta(
                hours=settings.BOOKING_MAX_SLOT_HOURS
            ):
                raise serializers.ValidationError(
                    {"end_time": [f"A slot is at most {settings.BOOKING_MAX_SLOT_HOURS} hours."]}
                )
            return data

    @extend_schema(request=InputSerializer, responses={201: HoldOutputSerializer})
    @idempotent
    def post(self, request: Request) -> Response:
        data = inputs.validated(self.InputSerializer, request.data, BookingInvalidPayload)
        hold = services.booking_hold_create(
            resource_id=data["resource_id"],
            start_time=data["start_time"],
            end_time=data["end_time"],
            holder=signed_in_user(request),
        )
        return Response(HoldOutputSerializer(hold).data, status=201)


class BookingHoldConfirmApi(APIView):
    error_prefix = "BKG"
    permission_classes = [CanBook]

    @extend_schema(
        request=None, responses={201: BookingOutputSerializer, 200: BookingOutputSerializer}
    )
    @idempotent
    def post(self, request: Request, hold_id: str) -> Response:
        confirmation = services.booking_hold_confirm(
            hold_id=inputs.parse_id(hold_id, "hold_id", BookingInvalidPayload),
            customer=signed_in_user(request),
        )
        return Response(
            BookingOutputSerializer(confirmation.booking).data,
            status=201 if confirmation.created else 200,
        )


class BookingCancelApi(APIView):
    """A booking client cancels their own booking; an operator any (the cancellation saga)."""

    error_prefix = "BKG"
    permission_classes = [CanBookOrOperate]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    class OutputSerializer(serializers.Serializer):
        booking = BookingOutputSerializer()
        refund_processed = serializers.BooleanField()
        already_cancelled = serializers.BooleanField()
        refund_owed = serializers.BooleanField(
            help_text="Paid offline: the refund is owed to the customer and paid back by staff."
        )

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    @idempotent
    def post(self, request: Request, booking_id: str) -> Response:
        pk = inputs.parse_id(booking_id, "booking_id", BookingInvalidPayload)
        data = inputs.validated(self.InputSerializer, request.data, BookingInvalidPayload)
        result = services.booking_cancel(
            booking_id=pk, actor=signed_in_user(request), reason=data.get("reason", "")
        )
        return Response(
            {
                "booking": BookingOutputSerializer(result.booking).data,
                "refund_processed": result.refund_processed,
                "already_cancelled": result.already_cancelled,
                "refund_owed": result.refund_owed,
            }
        )


class BookingCheckInApi(APIView):
    """Staff check a customer in at the desk (CHECKED_IN)."""

    error_prefix = "BKG"
    permission_classes = [CanOperatePlatform]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(request=InputSerializer, responses=BookingOutputSerializer)
    @idempotent
    def post(self, request: Request, booking_id: str) -> Response:
        pk = inputs.parse_id(booking_id, "booking_id", BookingInvalidPayload)
        data = inputs.validated(self.InputSerializer, request.data, BookingInvalidPayload)
        booking = services.booking_check_in(
            booking_id=pk, actor=signed_in_user(request), reason=data.get("reason", "")
        )
        return Response(BookingOutputSerializer(booking).data)


class PaymentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    subject = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    method = serializers.CharField()
    status = serializers.CharField()
    recorded_by = serializers.CharField()
    created_at = serializers.DateTimeField()


class OfflinePaymentRecordApi(APIView):
    not_found = "No booking has the `booking_id` given; nothing was recorded."
    """Staff record a cash/transfer payment; recorded once, booking marked PAID."""

    error_prefix = "PAY"
    permission_classes = [CanOperatePlatform]

    class InputSerializer(serializers.Serializer):
        booking_id = serializers.IntegerField(min_value=1, max_value=2**62)
        amount = serializers.DecimalField(
            max_digits=12, decimal_places=2, min_value=Decimal("0.01")
        )
        method = serializers.ChoiceField(choices=[m.value for m in Payment.OFFLINE_METHODS])

    class OutputSerializer(serializers.Serializer):
        payment = PaymentOutputSerializer()
        booking = BookingOutputSerializer()
        duplicate = serializers.BooleanField()

    @extend_schema(
        request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer}
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = inputs.validated(self.InputSerializer, request.data, PaymentsInvalidPayload)
        result = services.booking_offline_payment_record(
            booking_id=data["booking_id"],
            amount=data["amount"],
            method=data["method"],
            actor=signed_in_user(request),
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        return Response(
            {
                "payment": PaymentOutputSerializer(result.payment).data,
                "booking": BookingOutputSerializer(result.booking).data,
                "duplicate": result.duplicate,
            },
            status=200 if result.duplicate else 201,
        )
