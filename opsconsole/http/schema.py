from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from opsconsole.http.context import REQUEST_ID_HEADER
from opsconsole.http.idempotency import HEADER as IDEMPOTENCY_HEADER
from opsconsole.http.idempotency import REPLAYED_HEADER

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, e.g. PAY-409-IDEMPOTENCY-KEY-IN-USE.")
    message = serializers.CharField()
    details = serializers.DictField(help_text="Field errors under `fields`, and context.")
    request_id = serializers.CharField(help_text="The X-Request-ID of this answer.")


class ErrorEnvelopeSerializer(serializers.Serializer):
    """Every error, from every route: `{"error": {code, message, details, request_id}}`."""

    error = ErrorSerializer()


ERROR_MEANINGS = {
    "400": "Invalid input (`*-400-INVALID-PAYLOAD`); nothing changed.",
    "401": "No credentials, or expired ones.",
    "403": "Authenticated, but this role may not do this.",
    "404": "No such object, or not yours to see.",
    "409": "A conflict: the object changed state, or the Idempotency-Key is in use or was "
    "used with another body; nothing changed.",
    "429": "Rate limited: retry after the `Retry-After` seconds.",
    "503": "A dependency (database, provider) is down; nothing changed. Safe to retry with "
    "the same Idempotency-Key.",
}


class AutoSchema(SpectacularAutoSchema):
    """Name nested Input/Output serializers after their view, so each gets its own component;
    declare on every operation the error envelope for the errors it can answer, and the
    Idempotency-Key header where the handler honours one."""

    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        qualname = type(serializer).__qualname__
        name = qualname.replace(".", "").replace("Serializer", "")
        return name or super().get_serializer_name(serializer, direction)

    def _handler(self) -> Any:
        return getattr(self.view, (self.method or "").lower(), None)

    def get_override_parameters(self) -> list:
        parameters = list(super().get_override_parameters())
        if getattr(self._handler(), "accepts_idempotency_key", False):
            parameters.append(
                OpenApiParameter(
                    IDEMPOTENCY_HEADER,
                    str,
                    OpenApiParameter.HEADER,
                    description="1-255 visible ASCII characters, unique per change. A retry "
                    "with the same key and body answers the first result again (with "
                    f"`{REPLAYED_HEADER}: true`) and changes nothing; another body is a 409.",
                )
            )
        return parameters

    def error_statuses(self) -> list[str]:
        statuses = ["400"] if self.method in UNSAFE or self._has_query_input() else []
        permissions = getattr(self.view, "permission_classes", [])
        if not all(permission is AllowAny for permission in permissions):
            statuses += ["401", "403"]
        if "{" in self.path:
            statuses.append("404")
        if self.method in UNSAFE:
            statuses.append("409")
        return [*statuses, "429", "503"]

    def _has_query_input(self) -> bool:
        return any(parameter.get("in") == "query" for parameter in self._get_parameters() or [])

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        for status in self.error_statuses():
            if status not in responses:
                response = self._get_response_for_code(
                    ErrorEnvelopeSerializer, status, direction=direction
                )
                response["description"] = ERROR_MEANINGS[status]
                responses[status] = response
        idempotent = getattr(self._handler(), "accepts_idempotency_key", False)
        for status, response in responses.items():
            headers = response.setdefault("headers", {})
            headers[REQUEST_ID_HEADER] = {
                "schema": {"type": "string"},
                "description": "This answer's request id (the caller's, if it sent a valid "
                "one): quote it to support; logs and audit rows carry it.",
            }
            if idempotent and str(status).startswith("2"):
                headers[REPLAYED_HEADER] = {
                    "schema": {"type": "string", "enum": ["true"]},
                    "description": "Present when this is the stored answer to an earlier "
                    "request with the same Idempotency-Key (nothing was done again).",
                }
        return responses


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <key>` (knox: hashed, expiring), or the same key as a standard
    bearer token, which is what generated clients send."""

    target_class = "opsconsole.access.authentication.ApiTokenAuthentication"
    name = ["apiToken", "bearerToken"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Token <key>`: the header's value is the word Token, a space "
                "and the key from manage.py create_api_token (tokens expire).",
            },
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The same key as `Authorization: Bearer <key>`.",
            },
        ]


class StationCredentialScheme(OpenApiAuthenticationExtension):
    """`Authorization: Station <key>`: a credential bound to one station."""

    target_class = "payments.stations.StationCredentialAuthentication"
    name = "stationCredential"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Station <key>, issued in the admin; names the station.",
        }


# Routes served by views that are not DRF's (a library's webhook view): their app registers
# the operation here, in OpenAPI terms, and the hook below adds it to the schema.
_plain_routes: dict[str, dict[str, Any]] = {}


def register_plain_route(path: str, method: str, operation: dict[str, Any]) -> None:
    _plain_routes.setdefault(path, {})[method.lower()] = operation


def error_response(status: str, meaning: str = "") -> dict[str, Any]:
    """The envelope answer for `status`, in OpenAPI terms, for hand-written operations."""
    return {
        "description": meaning or ERROR_MEANINGS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


def document_plain_routes(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular post-processing hook: add the registered plain routes."""
    for path, operations in _plain_routes.items():
        result.setdefault("paths", {}).setdefault(path, {}).update(operations)
    return result
