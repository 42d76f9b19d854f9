"""What one delivery attempt sends, and what came back (the platform's outbound result)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opsconsole.outbound.guard import OutboundResult


@dataclass(frozen=True)
class DeliveryRequest:
    url: str
    body: Any
    headers: dict[str, str]
    # The body as sent: the signature covers these exact bytes.
    content: bytes = b""

    def snapshot(self) -> dict[str, Any]:
        return {"method": "POST", "url": self.url, "headers": self.headers, "body": self.body}


# Deliveries keep the platform's outbound result shape (status or error class, snapshot).
DeliveryResult = OutboundResult
