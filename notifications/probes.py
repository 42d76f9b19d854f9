"""The channels' entries in the integrations status (seed 004): a provider that is set up is
asked with a cheap authenticated read, as each documents one; the result is cached a minute."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from opsconsole.integration_status import ProbeResult, authenticated_read
from opsconsole.providers import Mode, provider


def _resend() -> ProbeResult:
    anymail = settings.ANYMAIL
    url = str(anymail.get("RESEND_API_URL") or "https://api.resend.com/").rstrip("/") + "/domains"
    return authenticated_read(
        url, headers={"Authorization": f"Bearer {anymail.get('RESEND_API_KEY', '')}"}
    )


def _twilio() -> ProbeResult:
    twilio = settings.TWILIO
    base = (twilio["API_BASE"] or "https://api.twilio.com").rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{twilio['ACCOUNT_SID']}.json"
    return authenticated_read(url, auth=(twilio["ACCOUNT_SID"], twilio["AUTH_TOKEN"]))


def _whatsapp_cloud() -> ProbeResult:
    config = settings.WHATSAPP
    url = f"{config['API_BASE'].rstrip('/')}/{config['API_VERSION']}/{config['PHONE_NUMBER_ID']}"
    return authenticated_read(url, headers={"Authorization": f"Bearer {config['ACCESS_TOKEN']}"})


def _fcm() -> ProbeResult:
    """FCM has no free read; getting the service account's token proves the credentials."""
    import google.auth.exceptions

    from notifications.push import access_token

    try:
        access_token()
    except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
        return ProbeResult("red", f"no token: {type(exc).__name__}")
    return ProbeResult("green", "token issued")


READS: dict[str, Callable[[], ProbeResult]] = {
    "anymail": _resend,
    "twilio": _twilio,
    "cloud_api": _whatsapp_cloud,
    "fcm": _fcm,
}


def channel_probe(channel: str) -> Callable[[], ProbeResult]:
    def probe() -> ProbeResult:
        mode = provider(channel).mode()
        if mode == Mode.MISSING:
            return ProbeResult("red", provider(channel).not_configured_detail())
        if mode == Mode.SANDBOX:
            return ProbeResult("amber", "sandbox (records, sends nothing)")
        if mode == Mode.OFF:
            return ProbeResult("green", "switched off on purpose")
        name = settings.NOTIFICATION_CHANNELS.get(channel, {}).get("provider", "")
        read = READS.get(name)
        if read is None:  # the generic JSON endpoint documents no read to ask
            return ProbeResult("green", "configured")
        return read()

    return probe
