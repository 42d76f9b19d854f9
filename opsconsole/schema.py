from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Name nested Input/Output serializers after their view, so each gets its own component."""

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        qualname = type(serializer).__qualname__
        name = qualname.replace(".", "").replace("Serializer", "")
        return name or super().get_serializer_name(serializer, direction)
