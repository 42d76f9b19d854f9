"""Push through FCM's HTTP v1 API: a service account's OAuth token from google-auth (its
token URI as the account file says), then POST /v1/projects/<project>/messages:send. An
UNREGISTERED answer is a not-registered token, which push_send invalidates."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import requests
from django.conf import settings
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from notifications.adapters import ChannelProvider, OutboundMessage, SendResult
from opsconsole.failures.retry import parse_retry_after
from opsconsole.outbound.guard import post_json, provider_timeout
from opsconsole.outbound.integration_status import ProbeResult

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN_NOT_REGISTERED = "messaging/registration-token-not-registered"
PERMANENT_ERRORS = frozenset({"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"})

_credentials: dict[str, service_account.Credentials] = {}
_credentials_lock = threading.Lock()


def fcm_required() -> dict[str, str]:
    return {
        "FCM_PROJECT_ID": settings.FCM["PROJECT_ID"],
        "FCM_SERVICE_ACCOUNT": settings.FCM["SERVICE_ACCOUNT"],
    }


class BoundedRequest(Request):
    """google-auth's transport, with our timeout on the token call."""

    def __call__(self, url: str, method: str = "GET", *args: Any, **kwargs: Any):
        kwargs["timeout"] = kwargs.get("timeout") or provider_timeout(
            settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS
        )
        return super().__call__(url, method, *args, **kwargs)


def access_token() -> str:
    """The service account's token, fetched once and refreshed when it runs out."""
    account = settings.FCM["SERVICE_ACCOUNT"]
    key = hashlib.sha256(account.encode()).hexdigest()
    with _credentials_lock:
        credentials = _credentials.get(key)
        if credentials is None:
            credentials = service_account.Credentials.from_service_account_info(
                json.loads(account), scopes=[SCOPE]
            )
            _credentials[key] = credentials
        if not credentials.valid:
            credentials.refresh(BoundedRequest(requests.Session()))
        return str(credentials.token)


@dataclass
class FcmPushChannel:
    channel: str = "push"
    provider: str = "fcm"

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            token = access_token()
        except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            return SendResult(
                ok=False,
                provider=self.provider,
                failure_code="auth_failed",
                failure_detail=f"{type(exc).__name__}: {exc}"[:1000],
            )
        config = settings.FCM
        context = message.context
        result = post_json(
            f"{config['API_BASE'].rstrip('/')}/v1/projects/{config['PROJECT_ID']}/messages:send",
            body={
                "message": {
                    "token": message.to,
                    "notification": {
                        "title": str(context.get("title", "")),
                        "body": str(context.get("body", "")),
                    },
                    # FCM data values are strings.
                    "data": {str(k): str(v) for k, v in (context.get("data") or {}).items()},
                }
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout_seconds=provider_timeout(settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS),
        )
        body = result.json_body()
        if result.ok and body.get("name"):
            return SendResult(
                ok=True,
                provider=self.provider,
                provider_message_id=str(body["name"])[:200],
                http_status=result.http_status,
                duration_ms=result.duration_ms,
            )
        error_code = fcm_error_code(body)
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code=result.failure_code if not result.ok else "invalid_response",
            failure_detail=(result.error_detail or result.body)[:1000],
            http_status=result.http_status if not result.ok else None,
            retry_after_seconds=parse_retry_after(result.headers.get("retry-after")),
            duration_ms=result.duration_ms,
            provider_error_code=TOKEN_NOT_REGISTERED
            if error_code == "UNREGISTERED"
            else error_code,
            response_body=result.body[:2000],
            permanent=error_code in PERMANENT_ERRORS,
        )


def fcm_error_code(body: dict[str, Any]) -> str:
    """FCM v1's errorCode from the error's details (UNREGISTERED, QUOTA_EXCEEDED, ...)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status") or "")


def fcm_read() -> ProbeResult:
    """FCM has no free read; getting the service account's token proves the credentials."""
    try:
        access_token()
    except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
        return ProbeResult("red", f"no token: {type(exc).__name__}")
    return ProbeResult("green", "token issued")


PROVIDER = ChannelProvider("fcm", adapter=FcmPushChannel, required=fcm_required, probe=fcm_read)
