"""What producers create through notifications: WhatsApp campaigns with their targets
(JSON, or a CSV upload) and push tokens (registered and removed)."""

from __future__ import annotations

import csv
import io
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import campaigns
from notifications.api.views import CampaignStatusSerializer, NotificationsInvalidPayload
from notifications.push_tokens import push_token_register, push_token_remove
from opsconsole.access.permissions import CanProduce, CanRegisterPushTokens
from opsconsole.http import inputs
from opsconsole.http.idempotency import idempotent
from opsconsole.http.parsers import BoundedJSONParser
from opsconsole.models import INGEST_PERMISSION

MAX_CSV_BYTES = 5 * 1024 * 1024


def phones_from_csv(upload: Any) -> list[str]:
    """The `phone` column (or the first one) of an uploaded CSV, UTF-8, header optional."""
    if upload.size > MAX_CSV_BYTES:
        raise NotificationsInvalidPayload(details={"fields": {"targets": ["At most 5 MB."]}})
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotificationsInvalidPayload(
            details={"fields": {"targets": ["A UTF-8 CSV file."]}}
        ) from exc
    rows = [
        row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)
    ]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("phone") if "phone" in header else 0
    body = rows[1:] if "phone" in header else rows
    return [row[column].strip() for row in body if len(row) > column and row[column].strip()]


class CampaignCreateApi(APIView):
    """A campaign in draft with its targets; start it with POST .../start. At most
    CAMPAIGN_MAX_TARGETS_PER_REQUEST targets; above CAMPAIGN_INLINE_TARGETS they are
    imported after the request (import_state, targets_imported of targets_total)."""

    error_prefix = "NTF"
    permission_classes = [CanProduce]
    # Each request may stage a large list: a rate of its own, far below the overall one.
    throttle_scope = "campaign_create"
    parser_classes = [BoundedJSONParser, MultiPartParser]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        template = serializers.CharField(max_length=200)
        phones = serializers.ListField(
            child=serializers.CharField(max_length=32),
            required=False,
            help_text="At most CAMPAIGN_MAX_TARGETS_PER_REQUEST (with the CSV's).",
        )
        targets = serializers.FileField(required=False, help_text="CSV with a phone column.")
        throttle_per_minute = serializers.IntegerField(required=False, min_value=1, max_value=6000)
        quiet_hours_start = serializers.TimeField(required=False)
        quiet_hours_end = serializers.TimeField(required=False)
        quiet_hours_timezone = serializers.CharField(required=False, max_length=64)

    @extend_schema(
        request={
            "application/json": InputSerializer,
            "multipart/form-data": InputSerializer,
        },
        responses={201: CampaignStatusSerializer},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = inputs.validated(
            self.InputSerializer,
            request.data.dict() if hasattr(request.data, "dict") else request.data,
            NotificationsInvalidPayload,
        )
        phones = list(data.get("phones") or [])
        if "targets" in data:
            phones += phones_from_csv(data["targets"])
        problems = self._problems(data, phones)
        if problems:
            raise NotificationsInvalidPayload(details={"fields": problems})
        quiet: tuple[time, time] | None = None
        if "quiet_hours_start" in data:
            quiet = (data["quiet_hours_start"], data["quiet_hours_end"])
        campaign = campaigns.campaign_create(
            name=data["name"],
            template=data["template"],
            phones=phones,
            throttle_per_minute=data.get("throttle_per_minute", 60),
            quiet_hours=quiet,
            quiet_hours_timezone=data.get("quiet_hours_timezone", "UTC"),
            actor=request.user,
        )
        body = campaigns.campaign_status(campaign_id=campaign.pk)
        return Response(CampaignStatusSerializer(body).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _problems(data: dict[str, Any], phones: list[str]) -> dict[str, list[str]]:
        problems: dict[str, list[str]] = {}
        if not phones:
            problems["phones"] = ["Give phones (JSON) or a targets CSV with at least one."]
        elif len(phones) > settings.CAMPAIGN_MAX_TARGETS_PER_REQUEST:
            limit = settings.CAMPAIGN_MAX_TARGETS_PER_REQUEST
            problems["phones"] = [f"At most {limit} targets in a request."]
        if ("quiet_hours_start" in data) != ("quiet_hours_end" in data):
            problems["quiet_hours_end"] = ["Quiet hours need a start and an end."]
        try:
            ZoneInfo(data.get("quiet_hours_timezone", "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            problems["quiet_hours_timezone"] = ["An IANA time zone, like Europe/Lisbon."]
        return problems


class PushTokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
    user_id = serializers.IntegerField()
    valid = serializers.BooleanField()


class PushTokenRegisterApi(APIView):
    error_prefix = "NTF"
    permission_classes = [CanRegisterPushTokens]

    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=500)
        user_id = serializers.IntegerField(
            required=False, help_text="Producers name the user; a customer registers its own."
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: PushTokenOutputSerializer, 200: PushTokenOutputSerializer},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = inputs.validated(self.InputSerializer, request.data, NotificationsInvalidPayload)
        user_id = _acting_for(request, data.get("user_id"))
        registration = push_token_register(
            token=data["token"],
            user_id=user_id,
            actor=request.user,
            # Producers name the user, so moving a device to its new user is theirs to do;
            # a customer never takes a token someone else holds.
            may_move=request.user.has_perm(INGEST_PERMISSION),
        )
        # A customer always hears 201: 200 for a token they already hold would tell, by
        # contrast, that a 201 for someone else's token moved nothing (it exists).
        fresh = registration.created or not request.user.has_perm(INGEST_PERMISSION)
        answer = status.HTTP_201_CREATED if fresh else status.HTTP_200_OK
        return Response(PushTokenOutputSerializer(registration).data, status=answer)


class PushTokenRemoveApi(APIView):
    error_prefix = "NTF"
    permission_classes = [CanRegisterPushTokens]

    # 200 with the token as removed (a DELETE's default in the schema is a bodiless 204).
    @extend_schema(responses={200: PushTokenOutputSerializer})
    @idempotent
    def delete(self, request: Request, token: str) -> Response:
        own = None if request.user.has_perm(INGEST_PERMISSION) else request.user.pk
        removed = push_token_remove(token=token, actor=request.user, user_id=own)
        return Response(PushTokenOutputSerializer(removed).data)


def _acting_for(request: Request, user_id: int | None) -> int:
    """Producers register for the user they name; anyone else only for themselves."""
    if request.user.has_perm(INGEST_PERMISSION):
        if user_id is None:
            raise NotificationsInvalidPayload(
                details={"fields": {"user_id": ["Required for a producer."]}}
            )
        return user_id
    if user_id not in (None, request.user.pk):
        raise NotificationsInvalidPayload(
            details={"fields": {"user_id": ["A customer registers its own devices only."]}}
        )
    return int(str(request.user.pk))
