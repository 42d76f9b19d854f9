"""The ingestion API: producers outside this process add events to an integration's queue,
one at a time or up to 100 in a request, with their own event ids for safe retries."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.permissions import CanIngest
from opsconsole.http import inputs
from opsconsole.http.idempotency import idempotent
from recovery.api.integrations import parse_integration_id
from recovery.errors import IntegrationInvalidPayload
from recovery.integrations.ingestion import EVENT_ID, EVENT_ID_MAX, MAX_BATCH, events_ingest


def _body_bytes(request: Request) -> int | None:
    """The body's size as declared (the body-limit middleware holds a body to it), if any."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    return int(declared) if declared.isascii() and declared.isdigit() else None


class EventInputSerializer(serializers.Serializer):
    event_type = serializers.CharField(help_text="A dotted type, like booking.confirmed.")
    payload = serializers.JSONField(help_text="Checked against the integration's payload_schema.")
    event_id = serializers.RegexField(
        EVENT_ID.pattern,
        required=False,
        max_length=EVENT_ID_MAX,
        help_text="Yours (another producer's same id is another event), sent to receivers as "
        "the `webhook-id`: letters, digits, '_' and '-' only (400 otherwise). The same id with "
        "the same event within 7 days answers the first item, never a second; with another "
        "event it is refused (409).",
    )


class IngestedOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField(help_text="The webhook-id every delivery of it carries.")
    status = serializers.CharField()


class EventIngestApi(APIView):
    error_prefix = "INT"
    permission_classes = [CanIngest]
    throttle_scope = "ingest"

    @extend_schema(
        request=EventInputSerializer,
        responses={
            202: IngestedOutputSerializer,
            200: OpenApiResponse(IngestedOutputSerializer, "This event id was queued before."),
        },
    )
    @idempotent
    def post(self, request: Request, integration_id: str) -> Response:
        pk = parse_integration_id(integration_id)
        if not isinstance(request.data, dict):
            raise IntegrationInvalidPayload(details={"fields": {"body": ["A JSON object."]}})
        (result,) = events_ingest(
            integration_id=pk,
            events=[request.data],
            actor=request.user,
            body_bytes=_body_bytes(request),
        )
        if result.refusal is not None:
            raise result.refusal
        if result.error is not None:
            raise IntegrationInvalidPayload(
                result.error["message"], details=result.error["details"]
            )
        answer = status.HTTP_200_OK if result.duplicate else status.HTTP_202_ACCEPTED
        return Response(result.body(), status=answer)


class EventBatchIngestApi(APIView):
    error_prefix = "INT"
    permission_classes = [CanIngest]
    throttle_scope = "ingest"

    class InputSerializer(serializers.Serializer):
        # Each event is checked by events_ingest (one result per event), not here.
        events = serializers.ListField(min_length=1, max_length=MAX_BATCH)

    class OutputSerializer(serializers.Serializer):
        results = serializers.ListField(
            child=serializers.DictField(),
            help_text="One per event, in order: {id, event_id, status, duplicate} or "
            "{index, error} for an event refused (the others are queued).",
        )

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    @idempotent
    def post(self, request: Request, integration_id: str) -> Response:
        pk = parse_integration_id(integration_id)
        data = inputs.validated(self.InputSerializer, request.data, IntegrationInvalidPayload)
        results = events_ingest(
            integration_id=pk,
            events=data["events"],
            actor=request.user,
            body_bytes=_body_bytes(request),
        )
        body: list[dict[str, Any]] = [
            result.body() | ({"duplicate": result.duplicate} if result.error is None else {})
            for result in results
        ]
        return Response({"results": body}, status=status.HTTP_202_ACCEPTED)
