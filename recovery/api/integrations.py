"""The integration catalog's routes, under /platform/integrations
(docs/runbooks/integration-retry-and-replay.md): list and create, read, change and delete one,
and rotate its signing secret."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.permissions import CanOperatePlatform, CanViewOrOperate
from opsconsole.access.personal_data import MasksPersonalData
from opsconsole.http import inputs
from opsconsole.http.idempotency import idempotent
from recovery import services
from recovery.errors import IntegrationInvalidPayload
from recovery.integrations import selectors
from recovery.integrations.stats import delivery_stats
from recovery.models import Integration
from recovery.services.integrations import EVENT_TYPE

API_REASON = "changed through the API"


def parse_integration_id(raw: str) -> int:
    return inputs.parse_id(raw, "integration_id", IntegrationInvalidPayload)


class IntegrationOutputSerializer(MasksPersonalData, serializers.Serializer):
    personal_fields = {"endpoint_url": "url"}

    id = serializers.IntegerField()
    name = serializers.CharField()
    endpoint_url = serializers.URLField()
    enabled = serializers.BooleanField()
    paused = serializers.BooleanField()
    paused_reason = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    max_in_flight = serializers.IntegerField()
    rate_per_second = serializers.IntegerField()
    ordering_key_path = serializers.CharField()
    body_format = serializers.ChoiceField(choices=Integration.BodyFormat.choices)
    payload_schema = serializers.JSONField(allow_null=True)
    signing_secret_created_at = serializers.SerializerMethodField()
    deleted_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_signing_secret_created_at(self, integration: Integration) -> str | None:
        """The current secret's age, never the secret (only create and rotate reveal one)."""
        secrets = integration.signing_secrets or []
        return secrets[0]["created_at"] if secrets else None


class RevealedSecretOutputSerializer(IntegrationOutputSerializer):
    signing_secret = serializers.CharField(
        source="revealed_secret", help_text="Shown in this answer only; store it now."
    )


def integration_answer(request: Request, integration: Integration, *, reveal: bool = False) -> dict:
    serializer = RevealedSecretOutputSerializer if reveal else IntegrationOutputSerializer
    return serializer(integration, context={"request": request}).data


class IntegrationDetailOutputSerializer(IntegrationOutputSerializer):
    last_24h = serializers.DictField(
        help_text="From the minute rollups: attempts, outcomes, success_rate, latency "
        "p50/p95 (to the bucket, in ms) and the outcomes of each of the last 24 hours."
    )


class IntegrationSettingsSerializer(serializers.Serializer):
    endpoint_url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.RegexField(EVENT_TYPE.pattern, max_length=200)
    )
    payload_schema = serializers.JSONField(required=False, allow_null=True)
    max_in_flight = serializers.IntegerField(required=False)
    rate_per_second = serializers.IntegerField(required=False)
    ordering_key_path = serializers.CharField(required=False, allow_blank=True, max_length=200)
    body_format = serializers.ChoiceField(
        choices=Integration.BodyFormat.choices,
        required=False,
        help_text="`payload` (the default): the body is the event's payload; "
        "`standard_webhooks`: `{type, timestamp, data}` with the payload as `data`.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class IntegrationListApi(APIView):
    error_prefix = "INT"
    permission_classes = [CanViewOrOperate]

    class OutputSerializer(serializers.Serializer):
        items = IntegrationOutputSerializer(many=True)

    class InputSerializer(IntegrationSettingsSerializer):
        name = serializers.CharField(max_length=200)

    @extend_schema(operation_id="platform_integrations_list", responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        integrations = selectors.integration_list()
        return Response(
            {
                "items": IntegrationOutputSerializer(
                    integrations, many=True, context={"request": request}
                ).data
            }
        )

    @extend_schema(request=InputSerializer, responses={201: RevealedSecretOutputSerializer})
    @idempotent
    def post(self, request: Request) -> Response:
        data = inputs.validated(self.InputSerializer, request.data, IntegrationInvalidPayload)
        reason = data.pop("reason", "") or "created through the API"
        integration = services.integration_create(**data, actor=request.user, reason=reason)
        body = integration_answer(request, integration, reveal=True)
        return Response(body, status=status.HTTP_201_CREATED)


class IntegrationDetailApi(APIView):
    error_prefix = "INT"
    permission_classes = [CanViewOrOperate]

    class InputSerializer(IntegrationSettingsSerializer):
        name = serializers.CharField(max_length=200)
        enabled = serializers.BooleanField()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, partial=True, **kwargs)

    class DeleteSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(responses=IntegrationDetailOutputSerializer)
    def get(self, request: Request, integration_id: str) -> Response:
        integration = selectors.integration_get(integration_id=parse_integration_id(integration_id))
        stats = delivery_stats(integration.pk).as_dict()
        return Response({**integration_answer(request, integration), "last_24h": stats})

    @extend_schema(request=InputSerializer, responses=IntegrationOutputSerializer)
    @idempotent
    def patch(self, request: Request, integration_id: str) -> Response:
        pk = parse_integration_id(integration_id)
        changes = inputs.validated(self.InputSerializer, request.data, IntegrationInvalidPayload)
        reason = changes.pop("reason", "") or API_REASON
        if not changes:
            raise IntegrationInvalidPayload(
                "Nothing to change.", details={"fields": {"body": ["Name a field to change."]}}
            )
        integration = services.integration_update(
            integration_id=pk, changes=changes, actor=request.user, reason=reason
        )
        return Response(integration_answer(request, integration))

    # 200 with the integration as it is now (disabled, kept): said as such, since a DELETE's
    # default in the schema is a 204 without a body, which generated clients then expect.
    @extend_schema(request=DeleteSerializer, responses={200: IntegrationOutputSerializer})
    @idempotent
    def delete(self, request: Request, integration_id: str) -> Response:
        pk = parse_integration_id(integration_id)
        data = inputs.validated(self.DeleteSerializer, request.data, IntegrationInvalidPayload)
        integration = services.integration_delete(
            integration_id=pk, actor=request.user, reason=data.get("reason") or API_REASON
        )
        return Response(integration_answer(request, integration))


class IntegrationRotateSecretApi(APIView):
    error_prefix = "INT"
    permission_classes = [CanOperatePlatform]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(request=InputSerializer, responses=RevealedSecretOutputSerializer)
    @idempotent
    def post(self, request: Request, integration_id: str) -> Response:
        pk = parse_integration_id(integration_id)
        data = inputs.validated(self.InputSerializer, request.data, IntegrationInvalidPayload)
        integration = services.integration_rotate_secret(
            integration_id=pk, actor=request.user, reason=data.get("reason") or "secret rotated"
        )
        return Response(integration_answer(request, integration, reveal=True))
