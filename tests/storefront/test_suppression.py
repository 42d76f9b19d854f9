"""A suspended storefront surface refuses (docs/runbooks/incident-response.md): loyalty
redemptions with nothing changed, promotional banners suppressed, each refusal a span and a
log line on its request's trace."""

from __future__ import annotations

import io
import json
import logging
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.apps import apps

from opsconsole.models import AuditEvent
from payments import vouchers
from payments.models import Voucher
from storefront.models import LOYALTY_REDEMPTIONS, PROMOTIONAL_BANNERS
from tests.helpers import error_of, station_client
from tests.storefront.factories import PromotionalBannerFactory, resume, suspend

REDEEM = "/api/station/redeem"
BANNERS = "/api/v1/storefront/banners"


def payments_rows() -> dict[str, int]:
    """Every payments table's row count, and the payments audit rows."""
    counts = {
        m._meta.label: m.objects.count() for m in apps.get_app_config("payments").get_models()
    }
    counts["audit"] = AuditEvent.objects.filter(event__startswith="payments.").count()
    return counts


@contextmanager
def captured_json_logs():
    """The JSON log lines written meanwhile, as the console's handler renders them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().addHandler(handler)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        logging.getLogger().removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


# ------------------------------------------------------------------ loyalty redemptions


@pytest.mark.django_db
def test_a_suspended_redemption_is_refused_and_changes_nothing(surfaces):
    voucher = vouchers.voucher_issue(description="Free coffee", value=Decimal("3.50"))
    suspend(surfaces["loyalty_redemptions"])
    lisbon = station_client("lisbon-1")
    before = payments_rows()

    refused = lisbon.post(
        REDEEM, {"code": voucher.code}, format="json", HTTP_IDEMPOTENCY_KEY="scan-1"
    )

    assert refused.status_code == 503, refused.content
    error = error_of(refused)
    assert error["code"] == "PAY-503-REDEMPTIONS-SUSPENDED"
    assert error["details"] == {"surface": "loyalty_redemptions"}
    assert refused["Retry-After"] == "60"
    assert payments_rows() == before  # no redemption, no refusal kept, no event, no audit
    assert Voucher.objects.get(pk=voucher.pk).status == Voucher.Status.ISSUED

    # Resumed, the station's retry with the same key redeems: the 503 was not stored.
    resume(surfaces["loyalty_redemptions"])
    again = lisbon.post(
        REDEEM, {"code": voucher.code}, format="json", HTTP_IDEMPOTENCY_KEY="scan-1"
    )
    assert again.status_code == 200, again.content
    assert "Idempotent-Replayed" not in again
    assert Voucher.objects.get(pk=voucher.pk).status == Voucher.Status.REDEEMED


@pytest.mark.django_db
def test_a_suspension_refuses_every_code_alike_revealing_nothing(surfaces):
    """Checked before any lookup: an unknown code gets the same refusal as a good one."""
    suspend(surfaces["loyalty_redemptions"])
    response = station_client("lisbon-1").post(REDEEM, {"code": "NOSUCHCODE"}, format="json")
    assert (response.status_code, error_of(response)["code"]) == (
        503,
        "PAY-503-REDEMPTIONS-SUSPENDED",
    )


@pytest.mark.django_db
def test_suspending_one_surface_leaves_the_other_served(surfaces, anonymous_client):
    PromotionalBannerFactory(title="Spring sale")
    voucher = vouchers.voucher_issue(description="Free coffee", value=Decimal("3.50"))
    suspend(surfaces["loyalty_redemptions"])
    assert anonymous_client.get(BANNERS).json()["suppressed"] is False

    resume(surfaces["loyalty_redemptions"])
    suspend(surfaces["promotional_banners"])
    redeemed = station_client("lisbon-1").post(REDEEM, {"code": voucher.code}, format="json")
    assert redeemed.status_code == 200, redeemed.content


# --------------------------------------------------------------- what on-call confirms by


@pytest.mark.django_db
def test_each_refusal_leaves_a_span_and_a_log_line_on_its_trace(
    surfaces, exported_spans, anonymous_client
):
    suspend(surfaces["promotional_banners"])
    suspend(surfaces["loyalty_redemptions"])
    with captured_json_logs() as lines:
        banners = anonymous_client.get(BANNERS)
        redeem = station_client("porto-2").post(REDEEM, {"code": "ANYCODE"}, format="json")
    assert (banners.status_code, redeem.status_code) == (200, 503)

    spans = [s for s in exported_spans() if s.name == "storefront.surface_suppressed"]
    by_surface = {}
    for span in spans:
        attributes = {a.key: a.value.string_value for a in span.attributes}
        by_surface[attributes["storefront.surface"]] = (span, attributes)
    assert set(by_surface) == {"promotional_banners", "loyalty_redemptions"}
    assert by_surface["loyalty_redemptions"][1]["storefront.station_id"] == "porto-2"
    assert by_surface["promotional_banners"][1]["storefront.switch"] == PROMOTIONAL_BANNERS.switch
    assert by_surface["loyalty_redemptions"][1]["storefront.switch"] == LOYALTY_REDEMPTIONS.switch
    # Each span sits in its request's trace, the one the answer's traceparent names.
    for response, surface in ((banners, "promotional_banners"), (redeem, "loyalty_redemptions")):
        span = by_surface[surface][0]
        assert span.trace_id.hex() == response["traceparent"].split("-")[1]

    logged = {
        line["surface"]: line for line in lines if line["event"] == "storefront_surface_suppressed"
    }
    assert set(logged) == {"promotional_banners", "loyalty_redemptions"}
    for surface, line in logged.items():
        span = by_surface[surface][0]
        assert line["trace_id"] == span.trace_id.hex()
        assert line["traceparent"].split("-")[2] == span.span_id.hex()
        assert line["switch"] == by_surface[surface][1]["storefront.switch"]


@pytest.mark.django_db
def test_a_served_surface_leaves_no_suppression_span(surfaces, exported_spans, anonymous_client):
    assert anonymous_client.get(BANNERS).json()["suppressed"] is False
    assert not [s for s in exported_spans() if s.name == "storefront.surface_suppressed"]
