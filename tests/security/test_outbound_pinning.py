"""A call goes exactly where its check looked: the name is resolved once, every address is
checked, and the connection is pinned to a checked address (DNS rebinding cannot swap in
127.0.0.1 between the check and the connect)."""

from __future__ import annotations

import socket

import pytest
from django.test import override_settings

from opsconsole.outbound.guard import checked_destination

PUBLIC = "93.184.216.34"


def fake_dns(monkeypatch, answers: list[str]) -> list[str]:
    """A resolver that answers `answers` in turn (a rebinding attacker's DNS)."""
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        address = answers[min(len(asked) - 1, len(answers) - 1)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.smoke
@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
def test_a_checked_name_is_pinned_to_the_address_that_was_checked(monkeypatch):
    asked = fake_dns(monkeypatch, [PUBLIC, "127.0.0.1"])
    destination = checked_destination("https://partner.example:8443/hooks?x=1")
    assert destination.refusal == ""
    assert destination.url == f"https://{PUBLIC}:8443/hooks?x=1"
    assert destination.host_header == "partner.example:8443"
    assert destination.sni_hostname == "partner.example"
    assert asked == ["partner.example"]  # resolved once: the connect uses the pinned address


@pytest.mark.smoke
@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
def test_a_name_with_any_private_address_is_refused(monkeypatch):
    fake_dns(monkeypatch, ["10.1.2.3"])
    assert "private" in checked_destination("https://partner.example/hooks").refusal


@pytest.mark.smoke
@override_settings(OUTBOUND_ALLOWED_HOSTS=["localhost"])
def test_an_allowed_host_is_called_as_written():
    destination = checked_destination("http://localhost:9000/hook")
    assert (destination.refusal, destination.url, destination.host_header) == (
        "",
        "http://localhost:9000/hook",
        "",
    )


@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
def test_the_voucher_renderer_goes_through_the_same_guard(httpserver):
    from payments.adapters import VoucherRenderer

    httpserver.expect_request("/render").respond_with_data(b"\x89PNG", content_type="image/png")
    preview = VoucherRenderer(url=httpserver.url_for("/render"), timeout_seconds=2).render(
        code="ABC", description="d", value="1"
    )
    assert preview.status == "error"
    assert preview.detail.startswith("endpoint_not_allowed: localhost resolves to")
    assert httpserver.log == []


# Every form of an address that is not a public one (issue #33): ranges a deny-list missed
# (shared 100.64/10, 6to4) and IPv4 carried inside IPv6 (6to4, Teredo, IPv4-mapped).
REFUSED_ADDRESSES = [
    pytest.param("10.1.2.3", id="10/8"),
    pytest.param("127.0.0.2", id="127/8"),
    pytest.param("169.254.169.254", id="metadata"),
    pytest.param("100.100.100.200", id="shared-100.64/10"),
    pytest.param("0.0.0.0", id="unspecified"),
    pytest.param("224.0.0.251", id="multicast-v4"),
    pytest.param("::1", id="v6-loopback"),
    pytest.param("fc00::5", id="fc00::/7"),
    pytest.param("fe80::1", id="fe80::/10"),
    pytest.param("ff02::1", id="multicast-v6"),
    pytest.param("2002:a9fe:a9fe::", id="6to4-of-metadata"),
    pytest.param("2001:0:4136:e378:8000:63bf:3fff:fdd2", id="teredo"),
    pytest.param("::ffff:169.254.169.254", id="v4-mapped-metadata"),
    pytest.param("::ffff:7f00:1", id="v4-mapped-loopback"),
]
PUBLIC_ADDRESSES = ["93.184.216.34", "2606:4700:4700::1111", "2002:5db8:d822::"]


def answering(monkeypatch, address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def getaddrinfo(host, port, *args, **kwargs):
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def literal_url(address: str) -> str:
    return f"https://[{address}]/hooks" if ":" in address else f"https://{address}/hooks"


@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_non_public_address_is_refused_at_call_time_written_or_resolved(monkeypatch, address):
    assert checked_destination(literal_url(address)).refusal
    answering(monkeypatch, address)
    resolved = checked_destination("https://partner.example/hooks")
    assert resolved.refusal.startswith("partner.example resolves to")
    assert resolved.error_class == "endpoint_not_allowed" and not resolved.retryable


@pytest.mark.django_db
@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
@pytest.mark.parametrize("address", [*REFUSED_ADDRESSES, "2130706433", "0x7f.1"])
def test_a_non_public_address_is_refused_when_an_endpoint_is_saved(address):
    from recovery.errors import IntegrationInvalidPayload
    from recovery.services import integration_check_fields

    with pytest.raises(IntegrationInvalidPayload) as refused:
        integration_check_fields({"endpoint_url": literal_url(address)})
    assert "is not allowed" in refused.value.details["endpoint_url"]


@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_a_public_address_is_accepted_saved_and_called(monkeypatch, address):
    from opsconsole.outbound.guard import endpoint_url_problem

    assert endpoint_url_problem(literal_url(address)) == ""
    assert checked_destination(literal_url(address)).refusal == ""
    answering(monkeypatch, address)
    destination = checked_destination("https://partner.example/hooks")
    assert destination.refusal == ""
    assert destination.url == literal_url(address)


def dns_fails_then_rebinds(monkeypatch) -> list[str]:
    """The guard's lookup fails; any later one (the HTTP client's own) answers 127.0.0.1,
    where the stand-in server listens."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host != "partner.example":
            return real(host, port, *args, **kwargs)
        if asked.count(host) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@override_settings(OUTBOUND_ALLOWED_HOSTS=[])
def test_a_failed_lookup_sends_nothing_and_is_a_retryable_dns_failure(monkeypatch, httpserver):
    from opsconsole.outbound.guard import post_json
    from recovery.services.delivery import delivery_retry_policy

    httpserver.expect_request("/hooks").respond_with_data("ok")
    dns_fails_then_rebinds(monkeypatch)
    url = f"http://partner.example:{httpserver.port}/hooks"
    result = post_json(url, body={"a": 1}, headers={}, timeout_seconds=2)
    assert httpserver.log == []
    assert result.error_class == "dns_failure"
    assert delivery_retry_policy().is_retryable_network_error(result.error_class)


@pytest.mark.django_db
@pytest.mark.parametrize("in_flight", [1, 64], ids=["one-at-a-time", "in-flight"])
def test_a_delivery_whose_lookup_fails_is_retried_later_not_sent_unpinned(
    monkeypatch, httpserver, integration, in_flight
):
    from recovery.models import Integration, RecoveryItem
    from tests.recovery.factories import QueuedItemFactory
    from tests.workers import deliver

    httpserver.expect_request("/hooks/crm").respond_with_data("ok")
    item = QueuedItemFactory(integration=integration)
    # Saved while the name resolved to a public address.
    Integration.objects.filter(pk=integration.pk).update(
        endpoint_url=f"http://partner.example:{httpserver.port}/hooks/crm"
    )
    dns_fails_then_rebinds(monkeypatch)
    with override_settings(OUTBOUND_ALLOWED_HOSTS=[], INTEGRATION_DELIVERY_IN_FLIGHT=in_flight):
        deliver()
    item.refresh_from_db()
    assert httpserver.log == []
    assert item.failure_code == "NETWORK_DNS_FAILURE"
    assert item.status == RecoveryItem.Status.RETRYING
    assert item.next_retry_at is not None
