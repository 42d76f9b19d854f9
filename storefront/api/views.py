"""The storefront's read of its promotional banners."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from storefront.banners import live_banners
from storefront.models import PROMOTIONAL_BANNERS
from storefront.surfaces import surface_served


class PromotionalBannerOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField()
    link = serializers.CharField(help_text="A storefront path, an https:// address, or empty.")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)


class StorefrontBannersApi(APIView):
    """The promotional banners to show now, newest first (at most 20). Public: the
    storefront shows them to everyone. While an operator has suspended the promotional
    banners surface, no banners and `suppressed: true` (not an error), each answer so
    refused leaving a `storefront.surface_suppressed` span
    (docs/runbooks/incident-response.md)."""

    error_prefix = "STF"
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        banners = PromotionalBannerOutputSerializer(many=True)
        suppressed = serializers.BooleanField(
            help_text="True while the promotional banners surface is suspended: no banners "
            "are shown, whatever is scheduled."
        )

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        if not surface_served(PROMOTIONAL_BANNERS):
            return Response({"banners": [], "suppressed": True})
        answer = {"banners": live_banners(), "suppressed": False}
        return Response(self.OutputSerializer(answer).data)
