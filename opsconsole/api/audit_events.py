"""The audit trail for API clients: what happened to one object, in one request, or in a
window of time, newest first and keyset-paged."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.permissions import CanViewPlatform
from opsconsole.access.personal_data import can_see_personal_data, mask_json, mask_text
from opsconsole.http import inputs
from opsconsole.http.errors import InvalidInput
from opsconsole.http.pagination import InvalidCursor, keyset_page
from opsconsole.models import AuditEvent


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    actor = serializers.CharField()
    reason = serializers.CharField()
    request_id = serializers.CharField()
    before_state = serializers.JSONField(allow_null=True)
    after_state = serializers.JSONField(allow_null=True)
    metadata = serializers.JSONField()
    created_at = serializers.DateTimeField()


class AuditEventPageSerializer(serializers.Serializer):
    items = AuditEventSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


def audit_event_body(event: AuditEvent, *, personal: bool) -> dict[str, Any]:
    show_json = (lambda value: value) if personal else mask_json
    return {
        "id": event.pk,
        "event": event.event,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "actor": event.actor,
        "reason": event.reason if personal else mask_text(event.reason),
        "request_id": event.request_id,
        "before_state": show_json(event.before_state),
        "after_state": show_json(event.after_state),
        "metadata": show_json(event.metadata),
        "created_at": event.created_at,
    }


class AuditEventListApi(APIView):
    """Filter by object (`object_type` and `object_id`, e.g. recovery.recoveryitem / 42), by
    `request_id`, by `event`, and by time (`since`, `until`); newest first."""

    error_prefix = "OPS"
    permission_classes = [CanViewPlatform]

    class FilterSerializer(serializers.Serializer):
        object_type = serializers.CharField(required=False, max_length=100)
        object_id = serializers.CharField(required=False, max_length=64)
        request_id = serializers.CharField(required=False, max_length=128)
        event = serializers.CharField(required=False, max_length=100)
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)
        limit = serializers.IntegerField(
            min_value=1,
            max_value=settings.API_LIST_MAX_LIMIT,
            default=settings.API_LIST_DEFAULT_LIMIT,
        )
        cursor = serializers.CharField(required=False, max_length=200)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if "object_id" in attrs and "object_type" not in attrs:
                raise serializers.ValidationError({"object_type": ["Needed with object_id."]})
            return attrs

    @extend_schema(
        operation_id="audit_events_list",
        parameters=[FilterSerializer],
        responses=AuditEventPageSerializer,
    )
    def get(self, request: Request) -> Response:
        filters = inputs.validated(self.FilterSerializer, request.query_params.dict(), InvalidInput)
        events = AuditEvent.objects.all()
        for name in ("object_type", "object_id", "request_id", "event"):
            if name in filters:
                events = events.filter(**{name: filters[name]})
        if "since" in filters:
            events = events.filter(created_at__gte=filters["since"])
        if "until" in filters:
            events = events.filter(created_at__lt=filters["until"])
        try:
            page = keyset_page(events, limit=filters["limit"], cursor=filters.get("cursor"))
        except InvalidCursor as exc:
            raise InvalidInput(str(exc), details={"fields": {"cursor": [str(exc)]}}) from exc
        personal = can_see_personal_data(request.user)
        return Response(
            {
                "items": [audit_event_body(event, personal=personal) for event in page.items],
                "next_cursor": page.next_cursor,
            }
        )
