"""The integration catalog, its recovery queue, and manual replay
(docs/runbooks/integration-retry-and-replay.md)."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.permissions import CanOperatePlatform, CanViewPlatform
from opsconsole.access.personal_data import MasksPersonalData, masked
from opsconsole.failures import failure_sources
from opsconsole.http import inputs
from opsconsole.http.errors import InvalidInput, NotFound
from opsconsole.http.idempotency import idempotent
from opsconsole.http.pagination import InvalidCursor
from recovery import services
from recovery.api.failure_serializers import (
    FailureGroupsSerializer,
    ResolvedSerializer,
)
from recovery.errors import IntegrationInvalidPayload
from recovery.inbox import bulk_actions
from recovery.inbox import groups as inbox
from recovery.integrations import selectors
from recovery.models import BulkAction, RecoveryItem


class OpsInvalidPayload(InvalidInput):
    code = "OPS-400-INVALID-PAYLOAD"


class OpsNotFound(NotFound):
    code = "OPS-404-NOT-FOUND"


def parse_id(raw: str, name: str) -> int:
    return inputs.parse_id(raw, name, IntegrationInvalidPayload)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    return inputs.validated(serializer_class, data, IntegrationInvalidPayload)


class RecoveryItemOutputSerializer(MasksPersonalData, serializers.Serializer):
    personal_fields = {
        "request_snapshot": "json",
        "response_snapshot": "json",
        "failure_detail": "text",
    }

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
        parameters=[FilterSerializer],
        responses=OutputSerializer,
    )
    def get(self, request: Request, integration_id: str) -> Response:
        query: dict[str, Any] = {
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
                "items": RecoveryItemOutputSerializer(
                    page.items, many=True, context={"request": request}
                ).data,
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
        return Response(
            RecoveryItemOutputSerializer(item, context={"request": request}).data, status=202
        )


# ---------------------------------------------------------------------------- failure inbox


def masked_group(user: Any, group: dict[str, Any]) -> dict[str, Any]:
    """A group's error texts as this caller may read them (partners' errors name customers)."""
    return group | {
        name: masked(user, "text", group[name]) for name in ("normalised_error", "example_error")
    }


class FailureInboxApi(APIView):
    """Every open failure of every app, grouped by fingerprint, sorted by customer impact."""

    error_prefix = "OPS"
    not_found = "With `fingerprint`: no open failures have that fingerprint."
    permission_classes = [CanViewPlatform]

    class FilterSerializer(serializers.Serializer):
        app = serializers.ChoiceField(choices=failure_sources.apps(), required=False)
        source = serializers.ChoiceField(choices=failure_sources.names(), required=False)  # type: ignore[assignment]  # the API's field name; DRF collects it
        fingerprint = serializers.CharField(required=False, max_length=32)
        limit = serializers.IntegerField(min_value=1, max_value=500, default=50)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: OpenApiResponse(
                FailureGroupsSerializer,
                "The groups; with `fingerprint`, that one group (a FailureGroup with `items`).",
            )
        },
    )
    def get(self, request: Request) -> Response:
        filters = inputs.validated(
            self.FilterSerializer, request.query_params.dict(), OpsInvalidPayload
        )
        groups = inbox.failure_groups(app=filters.get("app", ""), source=filters.get("source", ""))
        if fingerprint := filters.get("fingerprint"):
            group = next((g for g in groups if g.fingerprint == fingerprint), None)
            if group is None:
                raise OpsNotFound("No open failures have this fingerprint.")
            detail = group.as_dict(with_items=True, item_limit=filters["limit"])
            detail = masked_group(request.user, detail)
            detail["items"] = [
                {**entry, "error": masked(request.user, "text", entry["error"])}
                for entry in detail["items"]
            ]
            return Response(detail)
        return Response(
            {
                "groups": [
                    masked_group(request.user, g.as_dict()) for g in groups[: filters["limit"]]
                ],
                "total_groups": len(groups),
                "total_items": sum(g.count for g in groups),
            }
        )


# What the model is asked for a failure group's summary (the AI help, which fails open).
class AiHelpSerializer(serializers.Serializer):
    enhanced = serializers.BooleanField()
    text = serializers.CharField()
    fallbackReason = serializers.CharField(allow_null=True)


class FailureGroupSummaryApi(APIView):
    """A plain-language summary of one failure group by the AI help when it is configured
    and answering; otherwise the group's own description with `enhanced: false` and the
    `fallbackReason`, never an error."""

    error_prefix = "OPS"
    permission_classes = [CanOperatePlatform]

    @extend_schema(request=None, responses=AiHelpSerializer)
    @idempotent  # a client's retry gets the same summary, with no second call or audit row
    def post(self, request: Request, fingerprint: str) -> Response:
        if not re.fullmatch(r"[0-9a-f]{1,32}", fingerprint):
            raise OpsNotFound("No open failures have this fingerprint.")
        inputs.no_body(request, OpsInvalidPayload)
        group = next(iter(inbox.failure_groups(fingerprint=fingerprint)), None)
        if group is None:
            raise OpsNotFound("No open failures have this fingerprint.")
        summary = inbox.failure_group_summary(group, actor=request.user)
        return Response(summary.as_dict())


class FailureResolveApi(APIView):
    error_prefix = "OPS"
    permission_classes = [CanOperatePlatform]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: ResolvedSerializer,
            202: OpenApiResponse(ResolvedSerializer, "Waiting for a second operator."),
        },
    )
    @idempotent
    def post(self, request: Request, source: str, source_id: str) -> Response:
        if source not in failure_sources.names():
            raise OpsNotFound("Unknown failure source.")
        pk = inputs.parse_id(source_id, "source_id", OpsInvalidPayload)
        data = inputs.validated(self.InputSerializer, request.data, OpsInvalidPayload)
        outcome = inbox.failure_resolve_by_operator(
            source=source, source_id=pk, actor=request.user, reason=data["reason"]
        )
        body = {
            "source": source,
            "source_id": pk,
            "resolved": outcome.resolved,
            "awaiting_second_operator": outcome.awaiting_second_operator,
            "requested_by": outcome.requested_by,
        }
        return Response(body, status=200 if outcome.resolved else 202)


class BulkActionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    mode = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # the API's field name; DRF collects it
    provider = serializers.CharField()
    filter_description = serializers.JSONField()
    preview = serializers.JSONField()
    moves_money = serializers.BooleanField()
    rate_per_second = serializers.FloatField()
    reason = serializers.CharField()
    created_by = serializers.CharField()
    approved_by = serializers.CharField()
    total = serializers.IntegerField()
    processed = serializers.IntegerField()
    replayed = serializers.IntegerField()
    resolved = serializers.IntegerField()
    failed = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class BulkActionCreateApi(APIView):
    """The dry run: freezes the matching ids and predicts each item's fate; replays nothing."""

    error_prefix = "OPS"
    permission_classes = [CanOperatePlatform]

    class InputSerializer(serializers.Serializer):
        fingerprint = serializers.CharField(required=False, max_length=32)
        source = serializers.ChoiceField(choices=failure_sources.names(), required=False)  # type: ignore[assignment]  # the API's field name; DRF collects it
        ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), required=False, max_length=10000
        )
        rate_per_second = serializers.FloatField(required=False, default=1.0)
        reason = serializers.CharField(max_length=2000)
        mode = serializers.ChoiceField(
            choices=BulkAction.Mode.choices,
            default=BulkAction.Mode.REPLAY,
            help_text="replay (the default), or resolve: close every item with the reason.",
        )

    @extend_schema(request=InputSerializer, responses={201: BulkActionOutputSerializer})
    @idempotent
    def post(self, request: Request) -> Response:
        data = inputs.validated(self.InputSerializer, request.data, OpsInvalidPayload)
        action = bulk_actions.bulk_action_create(
            actor=request.user,
            reason=data["reason"],
            fingerprint=data.get("fingerprint", ""),
            source=data.get("source", ""),
            ids=data.get("ids"),
            rate_per_second=data["rate_per_second"],
            mode=data["mode"],
        )
        return Response(BulkActionOutputSerializer(action).data, status=201)


class BulkActionDetailApi(APIView):
    error_prefix = "OPS"
    permission_classes = [CanViewPlatform]

    @extend_schema(responses=BulkActionOutputSerializer)
    def get(self, request: Request, action_id: str) -> Response:
        pk = inputs.parse_id(action_id, "action_id", OpsInvalidPayload)
        action = BulkAction.objects.filter(pk=pk).first()
        if action is None:
            raise bulk_actions.BulkActionNotFound()
        return Response(BulkActionOutputSerializer(action).data)


class BulkActionTransitionApi(APIView):
    """approve | start | pause | resume | abort; approve must come from another operator."""

    error_prefix = "OPS"
    permission_classes = [CanOperatePlatform]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)
        rate_per_second = serializers.FloatField(
            required=False, min_value=0.01, max_value=bulk_actions.MAX_RATE_PER_SECOND
        )

    @extend_schema(
        operation_id="api_v1_failures_bulk_actions_transition",
        request=InputSerializer,
        responses=BulkActionOutputSerializer,
    )
    @idempotent
    def post(self, request: Request, action_id: str, verb: str) -> Response:
        if verb not in ("approve", "start", "pause", "resume", "abort"):
            raise OpsNotFound("Unknown bulk action verb.")
        pk = inputs.parse_id(action_id, "action_id", OpsInvalidPayload)
        data = inputs.validated(self.InputSerializer, request.data, OpsInvalidPayload)
        action = bulk_actions.bulk_action_transition(
            action_id=pk,
            verb=verb,
            actor=request.user,
            reason=data["reason"],
            rate_per_second=data.get("rate_per_second"),
        )
        return Response(BulkActionOutputSerializer(action).data)


class RecoveryItemEditAndReplayApi(APIView):
    """Correct a delivery's payload (validated, shown as a diff) and replay it."""

    error_prefix = "INT"
    permission_classes = [CanOperatePlatform]

    class InputSerializer(serializers.Serializer):
        payload = serializers.JSONField()
        reason = serializers.CharField(max_length=2000)

    class OutputSerializer(serializers.Serializer):
        item = RecoveryItemOutputSerializer()
        diff = serializers.CharField()
        edit_id = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    @idempotent
    def post(self, request: Request, integration_id: str, recovery_id: str) -> Response:
        integration_pk = parse_id(integration_id, "integration_id")
        item_pk = parse_id(recovery_id, "recovery_id")
        data = validated(self.InputSerializer, request.data)
        item, edit = services.recovery_item_edit_and_replay(
            integration_id=integration_pk,
            item_id=item_pk,
            payload=data["payload"],
            actor=request.user,
            reason=data["reason"],
        )
        return Response(
            {
                "item": RecoveryItemOutputSerializer(item, context={"request": request}).data,
                "diff": edit.diff,
                "edit_id": edit.pk,
            },
            status=202,
        )
