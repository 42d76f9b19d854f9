"""Campaign controls: start, stop (pause) and status
(docs/runbooks/campaign-dispatcher-stalls.md)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import campaigns
from opsconsole.access.permissions import CanOperatePlatform, CanViewPlatform
from opsconsole.http import inputs
from opsconsole.http.errors import InvalidInput
from opsconsole.http.idempotency import idempotent


class NotificationsInvalidPayload(InvalidInput):
    code = "NTF-400-INVALID-PAYLOAD"


class CampaignStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    queue_length = serializers.IntegerField()
    targets_by_status = serializers.DictField(child=serializers.IntegerField())
    last_progress_at = serializers.DateTimeField(allow_null=True)
    stalled = serializers.BooleanField()
    stalled_at = serializers.DateTimeField(allow_null=True)
    throttled_until = serializers.DateTimeField(allow_null=True)
    in_quiet_hours = serializers.BooleanField()
    throttle_per_minute = serializers.IntegerField()
    import_state = serializers.ChoiceField(
        choices=["importing", "complete"],
        help_text="A large list is imported after the request; the campaign starts once "
        "it is complete.",
    )
    targets_imported = serializers.IntegerField()
    targets_total = serializers.IntegerField()


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


def _campaign_id(raw: str) -> int:
    return inputs.parse_id(raw, "campaign_id", NotificationsInvalidPayload)


class CampaignStatusApi(APIView):
    error_prefix = "NTF"
    permission_classes = [CanViewPlatform]

    @extend_schema(responses=CampaignStatusSerializer)
    def get(self, request: Request, campaign_id: str) -> Response:
        status = campaigns.campaign_status(campaign_id=_campaign_id(campaign_id))
        return Response(CampaignStatusSerializer(status).data)


class CampaignStartApi(APIView):
    error_prefix = "NTF"
    permission_classes = [CanOperatePlatform]

    @extend_schema(request=ReasonSerializer, responses=CampaignStatusSerializer)
    @idempotent
    def post(self, request: Request, campaign_id: str) -> Response:
        pk = _campaign_id(campaign_id)
        data = inputs.validated(ReasonSerializer, request.data, NotificationsInvalidPayload)
        campaigns.campaign_start(campaign_id=pk, actor=request.user, reason=data.get("reason", ""))
        return Response(CampaignStatusSerializer(campaigns.campaign_status(campaign_id=pk)).data)


class CampaignStopApi(APIView):
    error_prefix = "NTF"
    permission_classes = [CanOperatePlatform]

    @extend_schema(request=ReasonSerializer, responses=CampaignStatusSerializer)
    @idempotent
    def post(self, request: Request, campaign_id: str) -> Response:
        pk = _campaign_id(campaign_id)
        data = inputs.validated(ReasonSerializer, request.data, NotificationsInvalidPayload)
        campaigns.campaign_stop(campaign_id=pk, actor=request.user, reason=data.get("reason", ""))
        return Response(CampaignStatusSerializer(campaigns.campaign_status(campaign_id=pk)).data)
