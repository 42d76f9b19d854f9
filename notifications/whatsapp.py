"""WhatsApp through Meta's Cloud API, in its documented wire format: a template message to
POST /<version>/<phone number id>/messages with the access token; the API's error codes
mapped to the campaign's outcomes (invalid number, rate limit, outage)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from notifications.adapters import ChannelProvider, OutboundMessage, SendResult
from opsconsole.failures.retry import parse_retry_after
from opsconsole.outbound.guard import post_json, provider_timeout
from opsconsole.outbound.integration_status import ProbeResult, authenticated_read

# The Cloud API's codes for "slow down": the campaign is throttled, not the target failed.
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
# Codes that another try cannot change (the number cannot receive WhatsApp, bad template).
PERMANENT_CODES = frozenset({131026, 131047, 131051, 132000, 132001})


def cloud_api_required() -> dict[str, str]:
    return {
        "WHATSAPP_PHONE_NUMBER_ID": settings.WHATSAPP["PHONE_NUMBER_ID"],
        "WHATSAPP_ACCESS_TOKEN": settings.WHATSAPP["ACCESS_TOKEN"],
    }


@dataclass
class WhatsAppCloudChannel:
    channel: str = "whatsapp"
    provider: str = "whatsapp_cloud_api"

    def send(self, message: OutboundMessage) -> SendResult:
        config = settings.WHATSAPP
        url = (
            f"{config['API_BASE'].rstrip('/')}/{config['API_VERSION']}/"
            f"{config['PHONE_NUMBER_ID']}/messages"
        )
        result = post_json(
            url,
            body={
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": message.to.lstrip("+"),
                "type": "template",
                "template": {"name": message.template, "language": {"code": config["LANGUAGE"]}},
            },
            headers={"Authorization": f"Bearer {config['ACCESS_TOKEN']}"},
            timeout_seconds=provider_timeout(settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS),
        )
        body = result.json_body()
        if result.ok:
            messages = body.get("messages") if isinstance(body, dict) else None
            message_id = messages[0].get("id") if isinstance(messages, list) and messages else ""
            if message_id:
                return SendResult(
                    ok=True,
                    provider=self.provider,
                    provider_message_id=str(message_id)[:200],
                    http_status=result.http_status,
                    duration_ms=result.duration_ms,
                )
            return self._failure(result, "invalid_response", None)
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if code in RATE_LIMIT_CODES:
            # A rate limit whatever the HTTP status Meta chose: the campaign waits.
            return self._failure(result, "rate_limited", code, http_status=429)
        return self._failure(result, result.failure_code, code, permanent=code in PERMANENT_CODES)

    def _failure(
        self,
        result,
        failure_code: str,
        code: object,
        *,
        http_status: int | None = None,
        permanent: bool = False,
    ) -> SendResult:
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code=failure_code,
            failure_detail=(result.error_detail or result.body)[:1000],
            http_status=http_status if http_status is not None else result.http_status,
            retry_after_seconds=parse_retry_after(result.headers.get("retry-after")),
            duration_ms=result.duration_ms,
            provider_error_code=str(code or ""),
            response_body=result.body[:2000],
            permanent=permanent,
        )


def cloud_api_read() -> ProbeResult:
    config = settings.WHATSAPP
    url = f"{config['API_BASE'].rstrip('/')}/{config['API_VERSION']}/{config['PHONE_NUMBER_ID']}"
    return authenticated_read(url, headers={"Authorization": f"Bearer {config['ACCESS_TOKEN']}"})


PROVIDER = ChannelProvider(
    "cloud_api", adapter=WhatsAppCloudChannel, required=cloud_api_required, probe=cloud_api_read
)
