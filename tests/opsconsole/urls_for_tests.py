"""Views that exist only for the platform tests: they exercise the shared machinery."""

from __future__ import annotations

import time

from django.db import transaction
from django.urls import include, path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.evidence import audit
from opsconsole.http.errors import Conflict, DependencyUnavailable
from opsconsole.http.idempotency import idempotent


class ChargeCreateApi(APIView):
    """An unsafe endpoint whose every execution leaves one audit row behind."""

    error_prefix = "TST"

    class InputSerializer(serializers.Serializer):
        amount = serializers.IntegerField(min_value=1)
        sleep_ms = serializers.IntegerField(min_value=0, max_value=5000, default=0)
        fail_with = serializers.ChoiceField(choices=["", "409", "503"], default="")

    @idempotent
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        time.sleep(data.validated_data["sleep_ms"] / 1000)
        if data.validated_data["fail_with"] == "409":
            raise Conflict("Already charged.", code="TST-409-ALREADY")
        if data.validated_data["fail_with"] == "503":
            raise DependencyUnavailable(code="TST-503-DEPENDENCY-UNAVAILABLE")
        with transaction.atomic():
            event = audit.record(
                "test.charge.executed",
                object_type="test.charge",
                object_id="1",
                after={"amount": data.validated_data["amount"]},
                actor=request.user,
            )
        return Response({"execution_id": event.pk, "amount": event.after_state["amount"]}, 201)


class BoomApi(APIView):
    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")


urlpatterns = [
    path("api/v1/test/charges", ChargeCreateApi.as_view()),
    path("api/v1/test/boom", BoomApi.as_view()),
    path("", include("opsconsole.urls")),
]
