from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Name nested Input/Output serializers after their view, so each gets its own component."""

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        qualname = type(serializer).__qualname__
        name = qualname.replace(".", "").replace("Serializer", "")
        return name or super().get_serializer_name(serializer, direction)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <key>` (knox: hashed, expiring)."""

    target_class = "opsconsole.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Token <key>, from manage.py create_api_token; expires.",
        }


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
