"""Integrations status (docs/runbooks/voucher-preview-failures.md): each outside dependency green,
amber or red.

Apps register a probe per dependency; results are kept in IntegrationProbe so every process
answers the same, and `force=True` probes again now.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.utils import timezone

from opsconsole.models import IntegrationProbe

logger = structlog.get_logger(__name__)

RANK = {"green": 0, "amber": 1, "red": 2}


@dataclass(frozen=True)
class ProbeResult:
    status: str  # green | amber | red
    detail: str = ""
    details: dict[str, Any] = field(default_factory=dict)


Probe = Callable[[], ProbeResult]
_probes: dict[str, Probe] = {}


def register_probe(name: str, probe: Probe) -> None:
    _probes[name] = probe


def integration_status(*, force: bool = False) -> dict[str, Any]:
    fresh_after = timezone.now() - timedelta(seconds=settings.INTEGRATION_STATUS_CACHE_SECONDS)
    stored = {p.name: p for p in IntegrationProbe.objects.filter(name__in=list(_probes))}
    items = []
    for name, probe in sorted(_probes.items()):
        cached = stored.get(name)
        if cached is None or force or cached.checked_at < fresh_after:
            try:
                result = probe()
            except Exception as exc:  # a broken probe is a red integration, not a 500
                logger.exception("integration_probe_failed", integration=name)
                result = ProbeResult("red", f"probe failed: {type(exc).__name__}")
            cached, _ = IntegrationProbe.objects.update_or_create(
                name=name,
                defaults={
                    "status": result.status,
                    "detail": result.detail,
                    "details": result.details,
                    "checked_at": timezone.now(),
                },
            )
        items.append(
            {
                "name": name,
                "status": cached.status,
                "detail": cached.detail,
                "details": cached.details,
                "checked_at": cached.checked_at.isoformat(),
            }
        )
    overall = max((item["status"] for item in items), key=RANK.__getitem__, default="green")
    return {"status": overall, "integrations": items}


PROBE_TIMEOUT_SECONDS = 3


def authenticated_read(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    who: str = "the provider",
    credentials: str = "the credentials",
    answering: tuple[int, ...] = (200,),
) -> ProbeResult:
    """A provider's cheap authenticated read: green when it answers one of `answering` (200),
    red when it refuses the credentials, answers anything else, or does not answer in
    PROBE_TIMEOUT_SECONDS."""
    import httpx

    from opsconsole.outbound.guard import DestinationRefused, elapsed_ms, guarded_request

    started = time.perf_counter()
    try:
        response = guarded_request(
            "GET", url, timeout_seconds=PROBE_TIMEOUT_SECONDS, headers=headers, auth=auth
        )
    except (DestinationRefused, httpx.HTTPError) as exc:
        return ProbeResult("red", f"no answer: {type(exc).__name__}", {"url": url})
    details = {
        "http_status": response.status_code,
        "duration_ms": elapsed_ms(started),
    }
    if response.status_code in (401, 403):
        return ProbeResult("red", f"{who} refused {credentials}", details)
    if response.status_code not in answering:
        return ProbeResult("red", f"{who} answered {response.status_code}", details)
    return ProbeResult("green", "answers", details)


def generic_endpoint_read(url: str, *, api_key: str, who: str) -> ProbeResult:
    """Our generic JSON providers (a POST endpoint) document no read, so the probe asks the
    endpoint itself with its key: a GET answered 200/204, or 405 (POST only), means it is
    there and took the connection; 401/403 means it refused the key; 404, 5xx or no answer
    is red."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    return authenticated_read(
        url, headers=headers, who=who, credentials="the API key", answering=(200, 204, 405)
    )
