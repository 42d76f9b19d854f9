"""Request input checks shared by every app's API: each app passes its own 400 error class."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from opsconsole.errors import InvalidInput


def parse_id(raw: str, name: str, error: type[InvalidInput]) -> int:
    """Path ids are validated here so a malformed one is a 400, not a 404 or a 500."""
    if not raw.isdigit() or len(raw) > 18:
        raise error(
            f"{name} must be a positive integer.", details={"fields": {name: ["Invalid id."]}}
        )
    return int(raw)


def validated(
    serializer_class: type[serializers.Serializer], data: Any, error: type[InvalidInput]
) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise error("The request is invalid; see details.", details={"fields": serializer.errors})
    return serializer.validated_data
