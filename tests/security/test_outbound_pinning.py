"""A call goes exactly where its check looked: the name is resolved once, every address is
checked, and the connection is pinned to a checked address (DNS rebinding cannot swap in
127.0.0.1 between the check and the connect)."""

from __future__ import annotations

import socket

import pytest
from django.test import override_settings

from opsconsole.outbound import checked_destination

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
