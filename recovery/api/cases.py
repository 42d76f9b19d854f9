"""The customer case view's API: find a customer, read their case, act on its failures."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.permissions import CanOperatePlatform, CanViewPlatform
from opsconsole.http import inputs
from opsconsole.http.errors import InvalidInput
from opsconsole.http.idempotency import idempotent
from payments.models import Refund
from recovery.cases import services

MAX_TERM = 320


class CaseInvalidPayload(InvalidInput):
    code = "OPS-400-INVALID-PAYLOAD"


class MatchSerializer(serializers.Serializer):
    ref = serializers.CharField(help_text="The customer's case ref (opaque).")
    kind = serializers.CharField(help_text="What matched: email, phone, booking, payment, ...")
    summary = serializers.CharField()
    contact = serializers.CharField(help_text="Masked without view_personal_data.")
    code = serializers.CharField(help_text="A matched voucher's code (masked likewise).")


class MatchesSerializer(serializers.Serializer):
    matches = MatchSerializer(many=True)


class CaseSearchApi(APIView):
    """Find customers by email, phone, booking, payment or refund id, Stripe id (payment
    intent, charge, refund, checkout session, event), voucher code, hosted session
    reference or request id."""

    error_prefix = "OPS"
    permission_classes = [CanViewPlatform]

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(max_length=MAX_TERM, trim_whitespace=True)

    @extend_schema(
        operation_id="cases_search",
        parameters=[FilterSerializer],
        responses={200: MatchesSerializer},
    )
    def get(self, request: Request) -> Response:
        data = inputs.validated(
            self.FilterSerializer, request.query_params.dict(), CaseInvalidPayload
        )
        return Response({"matches": services.case_search(term=data["q"], viewer=request.user)})


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField()
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField()
    details = serializers.DictField()
    failure = serializers.DictField(
        allow_null=True,
        help_text="Set when the row is an open failure: source, source_id, guard, actions.",
    )


class CaseSerializer(serializers.Serializer):
    ref = serializers.CharField()
    kind = serializers.CharField()
    customer = serializers.DictField()
    timeline = TimelineEntrySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    money = serializers.DictField(help_text="charged, refunds, totals per currency, warnings.")
    customer_saw = serializers.ListField(child=serializers.DictField())


class CaseDetailApi(APIView):
    """The customer's case: one timeline in time order (oldest first), keyset-paged. Each
    opening is audited; with CASE_REASON_REQUIRED, `reason` is required."""

    error_prefix = "OPS"
    permission_classes = [CanViewPlatform]

    class FilterSerializer(serializers.Serializer):
        cursor = serializers.CharField(required=False, max_length=500)
        limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
        reason = serializers.CharField(
            required=False,
            max_length=2000,
            allow_blank=True,
            help_text="Why you open it (audited).",
        )

    @extend_schema(
        operation_id="case_retrieve",
        parameters=[FilterSerializer],
        responses={200: CaseSerializer},
    )
    def get(self, request: Request, ref: str) -> Response:
        data = inputs.validated(
            self.FilterSerializer, request.query_params.dict(), CaseInvalidPayload
        )
        case = services.case_open(
            ref=ref,
            viewer=request.user,
            reason=data.get("reason", ""),
            cursor=data.get("cursor"),
            limit=data["limit"],
        )
        return Response(case)


class CaseReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, trim_whitespace=True)


class ActedSerializer(serializers.Serializer):
    source = serializers.CharField()  # type: ignore[assignment]  # the API's field name; DRF collects it
    source_id = serializers.IntegerField()
    outcome = serializers.CharField()


def _source_id(raw: str) -> int:
    return inputs.parse_id(raw, "source_id", CaseInvalidPayload)


class CaseFailureReplayApi(APIView):
    """Replay an open failure of this customer, as the failure inbox does: its guard first,
    then its own replay service; a replay that moves money is the inbox's approved run."""

    error_prefix = "OPS"
    permission_classes = [CanOperatePlatform]

    @extend_schema(request=CaseReasonSerializer, responses={200: ActedSerializer})
    @idempotent
    def post(self, request: Request, ref: str, source: str, source_id: str) -> Response:
        pk = _source_id(source_id)
        data = inputs.validated(CaseReasonSerializer, request.data, CaseInvalidPayload)
        outcome = services.case_failure_replay(
            ref=ref, source=source, source_id=pk, actor=request.user, reason=data["reason"]
        )
        return Response({"source": source, "source_id": pk, "outcome": outcome})


class CaseFailureResolveApi(APIView):
    """Resolve an open failure of this customer without replaying it (two operators when
    it moves money, as in the inbox)."""

    error_prefix = "OPS"
    permission_classes = [CanOperatePlatform]

    @extend_schema(
        request=CaseReasonSerializer, responses={200: ActedSerializer, 202: ActedSerializer}
    )
    @idempotent
    def post(self, request: Request, ref: str, source: str, source_id: str) -> Response:
        pk = _source_id(source_id)
        data = inputs.validated(CaseReasonSerializer, request.data, CaseInvalidPayload)
        result = services.case_failure_resolve(
            ref=ref, source=source, source_id=pk, actor=request.user, reason=data["reason"]
        )
        outcome = "resolved" if result.resolved else "awaiting_second_operator"
        body: dict[str, Any] = {"source": source, "source_id": pk, "outcome": outcome}
        return Response(body, status=200 if result.resolved else 202)


class SettleSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, trim_whitespace=True)
    payout_method = serializers.ChoiceField(choices=Refund.PayoutMethod.choices)
    payout_reference = serializers.CharField(max_length=200, required=False, allow_blank=True)
    paid_out_at = serializers.DateTimeField()


class CaseRefundSettleApi(APIView):
    """Record the payout of a refund this customer is owed offline (cash, transfer,
    terminal): the refund completes and the payment is refunded, audited."""

    error_prefix = "OPS"
    permission_classes = [CanOperatePlatform]

    @extend_schema(request=SettleSerializer, responses={200: ActedSerializer})
    @idempotent
    def post(self, request: Request, ref: str, refund_id: str) -> Response:
        pk = inputs.parse_id(refund_id, "refund_id", CaseInvalidPayload)
        data = inputs.validated(SettleSerializer, request.data, CaseInvalidPayload)
        status = services.case_refund_settle(
            ref=ref,
            refund_id=pk,
            actor=request.user,
            reason=data["reason"],
            method=data["payout_method"],
            reference=data.get("payout_reference", ""),
            paid_out_at=data["paid_out_at"],
        )
        return Response({"source": "offline_refund", "source_id": pk, "outcome": status})
