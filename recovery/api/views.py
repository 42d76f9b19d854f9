"""Seed 001's routes: the integration catalog, its recovery queue, and manual replay."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole import inputs
from opsconsole.idempotency import idempotent
from opsconsole.pagination import InvalidCursor
from opsconsole.permissions import CanOperatePlatform, CanViewPlatform
from recovery import selectors, services
from recovery.errors import IntegrationInvalidPayload
from recovery.models import RecoveryItem


def parse_id(raw: str, name: str) -> int:
    return inputs.parse_id(raw, name, IntegrationInvalidPayload)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    return inputs.validated(serializer_class, data, IntegrationInvalidPayload)


class IntegrationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    endpoint_url = serializers.URLField()
    enabled = serializers.BooleanField()
    paused = serializers.BooleanField()
    paused_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class RecoveryItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    integration_id = serializers.IntegerField()
    event_type = serializers.CharField()
    status = serializers.CharField()
    attempt_count = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    replay_count = serializers.IntegerField()
    next_retry_at = serializers.DateTimeField(allow_null=True)
    failure_code = serializers.CharField()
    failure_detail = serializers.CharField()
    request_snapshot = serializers.JSONField()
    response_snapshot = serializers.JSONField()
    request_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)


class IntegrationListApi(APIView):
    error_prefix = "INT"
    permission_classes = [CanViewPlatform]

    class OutputSerializer(serializers.Serializer):
        items = IntegrationOutputSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        integrations = selectors.integration_list()
        return Response({"items": IntegrationOutputSerializer(integrations, many=True).data})


class RecoveryQueueListApi(APIView):
    error_prefix = "INT"
    permission_classes = [CanViewPlatform]

    class FilterSerializer(serializers.Serializer):
        status = serializers.MultipleChoiceField(
            choices=RecoveryItem.Status.choices, required=False
        )
        limit = serializers.IntegerField(
            min_value=1,
            max_value=settings.API_LIST_MAX_LIMIT,
            default=settings.API_LIST_DEFAULT_LIMIT,
        )
        cursor = serializers.CharField(required=False, max_length=200)

    class OutputSerializer(serializers.Serializer):
        items = RecoveryItemOutputSerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, many=True, enum=RecoveryItem.Status.values),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses=OutputSerializer,
    )
    def get(self, request: Request, integration_id: str) -> Response:
        query = {
            "limit": request.query_params.get("limit", settings.API_LIST_DEFAULT_LIMIT),
            **(
                {"cursor": request.query_params["cursor"]}
                if "cursor" in request.query_params
                else {}
            ),
        }
        statuses = [
            s for raw in request.query_params.getlist("status") for s in raw.split(",") if s
        ]
        if statuses:
            query["status"] = statuses
        filters = validated(self.FilterSerializer, query)
        try:
            page = selectors.recovery_queue_page(
                integration_id=parse_id(integration_id, "integration_id"),
                statuses=sorted(filters.get("status", [])),
                limit=filters["limit"],
                cursor=filters.get("cursor"),
            )
        except InvalidCursor as exc:
            raise IntegrationInvalidPayload(
                str(exc), details={"fields": {"cursor": [str(exc)]}}
            ) from exc
        return Response(
            {
                "items": RecoveryItemOutputSerializer(page.items, many=True).data,
                "next_cursor": page.next_cursor,
            }
        )


class RecoveryItemReplayApi(APIView):
    error_prefix = "INT"
    permission_classes = [CanOperatePlatform]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000, allow_blank=False, trim_whitespace=True)

    @extend_schema(request=InputSerializer, responses={202: RecoveryItemOutputSerializer})
    @idempotent
    def post(self, request: Request, integration_id: str, recovery_id: str) -> Response:
        integration_pk = parse_id(integration_id, "integration_id")
        item_pk = parse_id(recovery_id, "recovery_id")
        data = validated(self.InputSerializer, request.data)
        item = services.recovery_item_replay(
            integration_id=integration_pk,
            item_id=item_pk,
            actor=request.user,
            reason=data["reason"],
        )
        return Response(RecoveryItemOutputSerializer(item).data, status=202)
