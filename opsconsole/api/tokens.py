"""A user's own API tokens: list them, and revoke one (a lost laptop, a leaked CI secret)
without asking a superuser. Each revocation is audited; another user's token is not found."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opsconsole.access.api_tokens import api_token_revoke_own, api_tokens_of
from opsconsole.access.permissions import signed_in_user
from opsconsole.http import inputs
from opsconsole.http.errors import InvalidInput, NotFound
from opsconsole.http.idempotency import idempotent

SELF_REVOKED = "revoked by its holder"


class IsSignedInUser(BasePermission):
    """A person's credential (a token or a session), not a station's."""

    message = "This needs a signed-in user."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, AbstractBaseUser) and request.user.is_authenticated


class ApiTokenSerializer(serializers.Serializer):
    token_key = serializers.CharField(help_text="The key's first characters; the key is not kept.")
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField(allow_null=True)
    current = serializers.BooleanField(help_text="The token this request was made with.")


class ApiTokenListSerializer(serializers.Serializer):
    items = ApiTokenSerializer(many=True)


class ApiTokenRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, max_length=500)


class ApiTokenRevokedSerializer(serializers.Serializer):
    token_key = serializers.CharField()
    revoked = serializers.BooleanField()


class OwnApiTokenListApi(APIView):
    error_prefix = "OPS"
    permission_classes = [IsSignedInUser]

    @extend_schema(responses={200: ApiTokenListSerializer}, operation_id="own_api_tokens_list")
    def get(self, request: Request) -> Response:
        current = getattr(request.auth, "token_key", None)
        items = [
            {
                "token_key": token.token_key,
                "created": token.created,
                "expiry": token.expiry,
                "current": token.token_key == current,
            }
            for token in api_tokens_of(signed_in_user(request))
        ]
        return Response({"items": items})


class OwnApiTokenRevokeApi(APIView):
    error_prefix = "OPS"
    permission_classes = [IsSignedInUser]

    @extend_schema(
        request=ApiTokenRevokeSerializer,
        responses={200: ApiTokenRevokedSerializer},
        operation_id="own_api_token_revoke",
    )
    @idempotent  # a retried revoke answers as the first did, not "no such token"
    def delete(self, request: Request, token_key: str) -> Response:
        data = inputs.validated(ApiTokenRevokeSerializer, request.data or {}, InvalidInput)
        if not api_token_revoke_own(
            user=signed_in_user(request),
            token_key=token_key[:25],
            actor=request.user,
            reason=(data.get("reason") or "").strip() or SELF_REVOKED,
        ):
            raise NotFound("No such token of yours.", code="OPS-404-TOKEN-NOT-FOUND")
        return Response({"token_key": token_key, "revoked": True})
