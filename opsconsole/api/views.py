from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.monitoring_access import may_see_health_details
from opsconsole.access.permissions import CanViewPlatform
from opsconsole.http.errors import InvalidInput
from opsconsole.models import OPERATE_PERMISSION
from opsconsole.monitoring import health
from opsconsole.outbound.integration_status import integration_status


class HealthLivezApi(APIView):
    """The process is up and serving; touches nothing else."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    # Load balancers and orchestrators probe often from one address.
    throttle_classes: list[type] = []

    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class HealthReadyzApi(APIView):
    """Per-component readiness; 503 when any component is `error`. Each component's details
    (queue sizes, error text) only for staff or a monitoring client (metrics token or
    network); anyone else sees the statuses."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [AllowAny]
    # Load balancers and orchestrators probe often from one address.
    throttle_classes: list[type] = []

    class ComponentSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["ready", "degraded", "error"])
        details = serializers.DictField()

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["ready", "degraded", "error"])
        checked_at = serializers.DateTimeField()
        components = serializers.DictField(child=serializers.DictField())

    @extend_schema(responses={200: OutputSerializer, 503: OutputSerializer})
    def get(self, request: Request) -> Response:
        report = health.readiness()
        if not may_see_health_details(request):
            report["components"] = {
                name: {"status": component["status"], "details": {}}
                for name, component in report["components"].items()
            }
        return Response(report, status=503 if report["status"] == "error" else 200)


class IntegrationsStatusApi(APIView):
    """Each outside dependency green, amber or red; `?force=true` probes again
    (docs/runbooks/voucher-preview-failures.md)."""

    error_prefix = "OPS"
    permission_classes = [CanViewPlatform]

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["green", "amber", "red"])
        integrations = serializers.ListField(child=serializers.JSONField())

    @extend_schema(parameters=[OpenApiParameter("force", bool)], responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        force = request.query_params.get("force", "false").lower()
        if force not in ("true", "false", "1", "0"):
            raise InvalidInput(
                "force must be true or false.", details={"fields": {"force": ["Not a boolean."]}}
            )
        forced = force in ("true", "1")
        if forced and not request.user.has_perm(OPERATE_PERMISSION):
            # A forced probe calls every provider: an operator's decision, not a viewer's.
            raise PermissionDenied(f"force=true needs the {OPERATE_PERMISSION} permission.")
        return Response(integration_status(force=forced))


class UsernameFailuresSerializer(serializers.Serializer):
    username = serializers.CharField()
    failures = serializers.IntegerField()


class AuthAttemptsSerializer(serializers.Serializer):
    failed_last_minute = serializers.IntegerField()
    failed_last_hour = serializers.IntegerField()
    top_usernames_last_hour = UsernameFailuresSerializer(many=True)


class LockedAccountSerializer(serializers.Serializer):
    username = serializers.CharField()
    failures = serializers.IntegerField()
    last_attempt_at = serializers.DateTimeField()


class AuthLockoutSerializer(serializers.Serializer):
    threshold = serializers.IntegerField()
    cooloff_minutes = serializers.IntegerField()
    lockouts_last_minute = serializers.IntegerField()
    locked_accounts = LockedAccountSerializer(many=True)


class AuthAttemptsApi(APIView):
    """Failed logins, for alerting on spikes against lockouts
    (docs/runbooks/incident-response.md)."""

    error_prefix = "OPS"
    permission_classes = [CanViewPlatform]

    @extend_schema(responses={200: AuthAttemptsSerializer})
    def get(self, request: Request) -> Response:
        from axes.models import AccessFailureLog

        now = timezone.now()
        failures = AccessFailureLog.objects.all()
        last_hour = failures.filter(attempt_time__gte=now - timedelta(hours=1))
        return Response(
            {
                "failed_last_minute": failures.filter(
                    attempt_time__gte=now - timedelta(minutes=1)
                ).count(),
                "failed_last_hour": last_hour.count(),
                "top_usernames_last_hour": [
                    {"username": row["username"], "failures": row["n"]}
                    for row in last_hour.values("username")
                    .annotate(n=Count("id"))
                    .order_by("-n", "username")[:10]
                ],
            }
        )


class AuthLockoutApi(APIView):
    """Locked accounts and lockouts per minute (alert when more than 3)."""

    error_prefix = "OPS"
    permission_classes = [CanViewPlatform]

    @extend_schema(responses={200: AuthLockoutSerializer})
    def get(self, request: Request) -> Response:
        from axes.models import AccessAttempt, AccessFailureLog

        now = timezone.now()
        threshold = settings.AXES_FAILURE_LIMIT
        cooloff_start = now - settings.AXES_COOLOFF_TIME
        locked = AccessAttempt.objects.filter(
            failures_since_start__gte=threshold, attempt_time__gte=cooloff_start
        ).order_by("-attempt_time")
        return Response(
            {
                "threshold": threshold,
                "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
                "lockouts_last_minute": AccessFailureLog.objects.filter(
                    locked_out=True, attempt_time__gte=now - timedelta(minutes=1)
                ).count(),
                "locked_accounts": [
                    {
                        "username": attempt.username,
                        "failures": attempt.failures_since_start,
                        "last_attempt_at": attempt.attempt_time.isoformat(),
                    }
                    for attempt in locked[:100]
                ],
            }
        )
