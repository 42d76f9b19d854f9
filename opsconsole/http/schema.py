from __future__ import annotations

from typing import Any, Literal

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from opsconsole.http.context import REQUEST_ID_HEADER
from opsconsole.http.idempotency import HEADER as IDEMPOTENCY_HEADER
from opsconsole.http.idempotency import KEY_PATTERN, REPLAYED_HEADER

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The largest id opsconsole.http.inputs.is_id accepts (18 digits).
MAX_ROW_ID = 10**18 - 1
TEXT = r"^[^\x00]*$"
NON_BLANK_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"


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
    "409": "A conflict: the object changed state, or a request with this Idempotency-Key "
    "is still in progress; nothing changed.",
    "422": "This Idempotency-Key was already used with a different request "
    "(`*-422-IDEMPOTENCY-KEY-REUSED`); nothing changed. Use a new key for a new change.",
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
                    # What opsconsole.http.idempotency accepts; anything else is a 400.
                    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
                    OpenApiParameter.HEADER,
                    description="1-255 visible ASCII characters, unique per change. A retry "
                    "with the same key and body answers the first result again (with "
                    f"`{REPLAYED_HEADER}: true`) and changes nothing; another body is a 422.",
                )
            )
        return parameters

    def _map_serializer_field(
        self, field: Any, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        """What the fields accept, stated so a generated client finds out before the server:
        text holds no NUL, a required text that is trimmed has a character that is not a
        space, and a decimal written as text has digits."""
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or schema.get("type") != "string" or "enum" in schema:
            return schema
        if any(isinstance(validator, RegexValidator) for validator in field.validators):
            return schema  # its own pattern says it
        if isinstance(field, serializers.DecimalField):
            whole = (field.max_digits or 18) - (field.decimal_places or 0)
            places = field.decimal_places
            fraction = f"(?:\\.\\d{{1,{places}}})?" if places else ""
            sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
            schema["pattern"] = f"^{sign}\\d{{1,{whole}}}{fraction}$"
        elif isinstance(field, serializers.CharField) and "pattern" not in schema:
            # No NUL anywhere (DRF refuses it); a trimmed required text needs a character
            # that is not a space.
            trimmed = not field.allow_blank and field.trim_whitespace
            schema["pattern"] = NON_BLANK_TEXT if trimmed else TEXT
        return schema

    def _resolve_path_parameters(self, variables: list[str]) -> list[dict[str, Any]]:
        """A path's `*_id` is a row id (opsconsole.http.inputs.parse_id): an integer that
        fits the database's bigint, anything else a 400."""
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if parameter["name"].endswith("_id"):
                parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": MAX_ROW_ID}
            elif parameter["schema"].get("type") == "string":
                # A NUL in a path is refused at the door (opsconsole.http.nul_bytes).
                parameter["schema"].setdefault("pattern", NON_BLANK_TEXT)
        return parameters

    def error_statuses(self) -> list[str]:
        # Input to refuse: a body, a query, or an id in the path that is no id.
        takes_input = self.method in UNSAFE or self._has_query_input() or "{" in self.path
        statuses = ["400"] if takes_input else []
        permissions = getattr(self.view, "permission_classes", [])
        if not all(permission is AllowAny for permission in permissions):
            statuses += ["401", "403"]
        if "{" in self.path or self._not_found():
            statuses.append("404")
        if self.method in UNSAFE:
            statuses.append("409")
        if getattr(self._handler(), "accepts_idempotency_key", False):
            statuses.append("422")
        return [*statuses, "429", "503"]

    def _not_found(self) -> str:
        """What a view whose path names no object answers 404 for (its `not_found`), e.g.
        a booking named in the body that does not exist."""
        return str(getattr(self.view, "not_found", ""))

    def _has_query_input(self) -> bool:
        return any(parameter.get("in") == "query" for parameter in self._get_parameters() or [])

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        for status in self.error_statuses():
            if status not in responses:
                response = self._get_response_for_code(
                    ErrorEnvelopeSerializer, status, direction=direction
                )
                response["description"] = (status == "404" and self._not_found()) or (
                    ERROR_MEANINGS[status]
                )
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


def close_request_bodies(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular post-processing hook: request bodies admit no property they do not
    name (`additionalProperties: false`), because the API refuses unknown fields
    (opsconsole.http.inputs.validated) rather than ignoring a misspelt one."""
    schemas = result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                reference = media.get("schema", {}).get("$ref", "")
                component = schemas.get(reference.rsplit("/", 1)[-1])
                if component and component.get("type") == "object":
                    component["additionalProperties"] = False
                    if method == "patch":  # a change names at least one field
                        component["minProperties"] = 1
    return result
