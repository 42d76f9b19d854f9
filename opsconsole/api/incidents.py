"""Incidents, read-only over the API (docs/runbooks/incident-response.md): the list, and one
incident's export with its notes, readyz payloads, failed server actions and trace ids.
Staff open, note and resolve incidents in the admin."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.permissions import CanOperatePlatform, CanViewPlatform
from opsconsole.http import inputs
from opsconsole.http.errors import InvalidInput, NotFound
from opsconsole.http.idempotency import idempotent
from opsconsole.http.pagination import InvalidCursor, keyset_page
from opsconsole.incidents.records import (
    WRITEUP_INSTRUCTIONS,
    incident_export,
    incident_summary,
    incident_writeup_material,
)
from opsconsole.models import Incident
from opsconsole.outbound.ai_help import ai_help


class IncidentSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    severity = serializers.ChoiceField(choices=Incident.Severity.values)
    status = serializers.ChoiceField(choices=Incident.Status.values)
    opened_by = serializers.CharField()
    opened_at = serializers.DateTimeField()
    resolved_by = serializers.CharField()
    resolved_at = serializers.DateTimeField(allow_null=True)


class IncidentListApi(APIView):
    permission_classes = [CanViewPlatform]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Incident.Status.values, required=False)
        limit = serializers.IntegerField(
            min_value=1,
            max_value=settings.API_LIST_MAX_LIMIT,
            default=settings.API_LIST_DEFAULT_LIMIT,
        )
        cursor = serializers.CharField(required=False, max_length=200)

    class OutputSerializer(serializers.Serializer):
        items = IncidentSummarySerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(
        parameters=[FilterSerializer],
        responses=OutputSerializer,
    )
    def get(self, request: Request) -> Response:
        filters = inputs.validated(self.FilterSerializer, request.query_params.dict(), InvalidInput)
        incidents = Incident.objects.all()
        if "status" in filters:
            incidents = incidents.filter(status=filters["status"])
        try:
            page = keyset_page(incidents, limit=filters["limit"], cursor=filters.get("cursor"))
        except InvalidCursor as exc:
            raise InvalidInput(str(exc), details={"fields": {"cursor": [str(exc)]}}) from exc
        return Response(
            {
                "items": [incident_summary(incident) for incident in page.items],
                "next_cursor": page.next_cursor,
            }
        )


class IncidentExportSerializer(IncidentSummarySerializer):
    writeup = serializers.DictField(help_text="summary, root_cause, blast_radius, links")
    notes = serializers.ListField(child=serializers.DictField())
    readyz = serializers.ListField(
        child=serializers.DictField(), help_text="A readyz payload a minute while open."
    )
    failed_actions = serializers.ListField(
        child=serializers.DictField(),
        help_text="Every server_action_failed event while open, with its trace id.",
    )
    trace_ids = serializers.ListField(child=serializers.CharField())


class IncidentExportApi(APIView):
    permission_classes = [CanViewPlatform]

    @extend_schema(responses=IncidentExportSerializer)
    def get(self, request: Request, incident_id: str) -> Response:
        pk = inputs.parse_id(incident_id, "incident_id", InvalidInput)
        incident = Incident.objects.filter(pk=pk).first()
        if incident is None:
            raise NotFound(f"Incident {pk} does not exist.")
        return Response(incident_export(incident))


class IncidentDraftSerializer(serializers.Serializer):
    enhanced = serializers.BooleanField()
    draft = serializers.CharField()
    fallbackReason = serializers.CharField(allow_null=True)


class IncidentDraftWriteupApi(APIView):
    """A draft of the incident's write-up from its notes, timeline and captured readyz
    payloads, by the AI help when it is configured and answering; otherwise the raw material
    with `enhanced: false` and the `fallbackReason`, never an error. Nothing is saved: the
    operator pastes what they keep into the write-up in the admin."""

    permission_classes = [CanOperatePlatform]

    @extend_schema(request=None, responses=IncidentDraftSerializer)
    @idempotent  # a client's retry gets the same draft, with no second call or audit row
    def post(self, request: Request, incident_id: str) -> Response:
        pk = inputs.parse_id(incident_id, "incident_id", InvalidInput)
        inputs.no_body(request, InvalidInput)
        incident = Incident.objects.filter(pk=pk).first()
        if incident is None:
            raise NotFound(f"Incident {pk} does not exist.")
        drafted = ai_help(
            purpose="incident_writeup",
            instructions=WRITEUP_INSTRUCTIONS,
            material=incident_writeup_material(incident),
            obj=incident,
            actor=request.user,
        )
        return Response(
            {
                "enhanced": drafted.enhanced,
                "draft": drafted.text,
                "fallbackReason": drafted.fallback_reason or None,
            }
        )
