from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from opsconsole.models import AuditEvent, IntegrationProbe
from payments import vouchers
from payments.models import StationCredential, Voucher, VoucherRedemption, VoucherRedemptionFailure
from tests.helpers import action_post, error_of, run_concurrently, station_client

REDEEM = "/api/station/redeem"
ADMIN = "/admin/payments/voucher/"
PNG = b"\x89PNG\r\n\x1a\nfake-but-typed-png"


@pytest.fixture
def voucher(db) -> Voucher:
    return vouchers.voucher_issue(
        description="Free coffee", value=Decimal("3.50"), station_scope="lisbon-1,lisbon-2"
    )


@pytest.fixture
def lisbon_1(db):
    return station_client("lisbon-1")


@pytest.mark.django_db
def test_a_station_in_scope_redeems_once(lisbon_1, voucher):
    body = {"code": voucher.code.lower()}
    response = lisbon_1.post(REDEEM, body, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["redeemed_station"]) == (
        "redeemed",
        "lisbon-1",
    )
    again = station_client("lisbon-2").post(REDEEM, body, format="json")
    assert (again.status_code, error_of(again)["code"]) == (409, "PAY-409-VOUCHER-ALREADY-REDEEMED")
    # The refused station learns nothing about where or when it was redeemed.
    assert error_of(again)["message"] == "This voucher is not redeemable here."
    assert error_of(again)["details"] == {"code": voucher.code}
    assert "lisbon-1" not in again.content.decode()
    assert VoucherRedemption.objects.count() == 1
    assert AuditEvent.objects.filter(event="payments.voucher.redeemed").count() == 1


@pytest.mark.django_db
def test_the_same_request_twice_redeems_once_and_answers_the_same(voucher):
    lisbon_2 = station_client("lisbon-2")
    body = {"code": voucher.code, "station_id": "lisbon-2"}
    first = lisbon_2.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="scan-77")
    second = lisbon_2.post(REDEEM, body, format="json", HTTP_IDEMPOTENCY_KEY="scan-77")
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert VoucherRedemption.objects.count() == 1


@pytest.mark.django_db
def test_a_station_out_of_scope_gets_a_clear_error_and_nothing_changes(voucher):
    response = station_client("porto-9").post(REDEEM, {"code": voucher.code}, format="json")
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "PAY-403-STATION-SCOPE-MISMATCH"
    # The valid stations are staff's to see, not the caller's.
    assert error["details"] == {"code": voucher.code}
    assert "lisbon" not in response.content.decode()
    assert Voucher.objects.get(pk=voucher.pk).status == "issued"
    refusal = VoucherRedemptionFailure.objects.get()
    assert (refusal.station_id, refusal.error_code) == ("porto-9", error["code"])
    assert "lisbon-1,lisbon-2" in refusal.message


@pytest.mark.django_db
def test_the_station_comes_from_the_credential_never_the_body(voucher, outsider_client):
    porto = station_client("porto-9")
    spoofed = porto.post(REDEEM, {"code": voucher.code, "station_id": "lisbon-1"}, format="json")
    assert (spoofed.status_code, error_of(spoofed)["code"]) == (400, "PAY-400-INVALID-PAYLOAD")
    # A user token, however valid, is not a station credential.
    user = outsider_client.post(REDEEM, {"code": voucher.code}, format="json")
    assert user.status_code == 401
    assert user["WWW-Authenticate"] == "Station"
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Station stn_forged-key")
    assert forged.post(REDEEM, {"code": voucher.code}, format="json").status_code == 401
    assert Voucher.objects.get(pk=voucher.pk).status == "issued"


@pytest.mark.django_db
def test_a_revoked_credential_redeems_nothing_and_both_steps_are_audited(admin_client, voucher):
    response = admin_client.post(
        "/admin/payments/stationcredential/add/",
        {"station_id": "lisbon-1", "label": "front desk", "reason": "new tablet"},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    key = shown[0].rsplit(": ", 1)[1]
    credential = StationCredential.objects.get()
    assert credential.key_hash != key and key not in credential.key_hash
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Station {key}")
    action_post(
        admin_client,
        "/admin/payments/stationcredential/",
        "revoke_credentials",
        [credential.pk],
        confirm="yes",
        reason="tablet stolen",
    )
    assert client.post(REDEEM, {"code": voucher.code}, format="json").status_code == 401
    assert Voucher.objects.get(pk=voucher.pk).status == "issued"
    events = AuditEvent.objects.filter(object_type="payments.stationcredential").order_by("id")
    assert [(e.event, e.reason) for e in events] == [
        ("payments.station_credential.issued", "new tablet"),
        ("payments.station_credential.revoked", "tablet stolen"),
    ]


@pytest.mark.django_db
def test_void_unknown_and_bad_input(lisbon_1, voucher, operator):
    vouchers.voucher_void(voucher_id=voucher.pk, actor=operator, reason="double redemption")
    void = lisbon_1.post(REDEEM, {"code": voucher.code}, format="json")
    assert (void.status_code, error_of(void)["code"]) == (409, "PAY-409-VOUCHER-VOID")
    assert "double redemption" not in void.content.decode()
    unknown = lisbon_1.post(REDEEM, {"code": "NOPE", "station_id": "lisbon-1"}, format="json")
    assert (unknown.status_code, error_of(unknown)["code"]) == (404, "PAY-404-VOUCHER-NOT-FOUND")
    bad = lisbon_1.post(REDEEM, {"code": ""}, format="json")
    assert (bad.status_code, error_of(bad)["code"]) == (400, "PAY-400-INVALID-PAYLOAD")


@pytest.mark.django_db(transaction=True)
def test_concurrent_redeems_of_one_voucher_give_exactly_one_success():
    voucher = vouchers.voucher_issue(description="Ticket", value=Decimal("10"))
    clients = [station_client(f"s{n}") for n in range(8)]

    def redeem(n: int) -> int:
        return (
            clients[n]
            .post(
                REDEEM,
                {"code": voucher.code},
                format="json",
                HTTP_IDEMPOTENCY_KEY=f"scan-{n}",
            )
            .status_code
        )

    assert sorted(run_concurrently(redeem, 8)) == [200] + [409] * 7
    assert VoucherRedemption.objects.filter(voucher=voucher).count() == 1


@pytest.mark.django_db
def test_admin_voids_and_issues_a_replacement_with_a_reason(admin_client, voucher):
    action_post(
        admin_client, ADMIN, "replace_vouchers", [voucher.pk], confirm="yes", reason="ticket 981"
    )
    voucher.refresh_from_db()
    assert (voucher.status, voucher.void_reason) == ("void", "ticket 981")
    replacement = Voucher.objects.get(replaces=voucher)
    assert (replacement.status, replacement.value, replacement.station_scope) == (
        "issued",
        voucher.value,
        voucher.station_scope,
    )
    assert replacement.code != voucher.code
    events = set(AuditEvent.objects.filter(reason="ticket 981").values_list("event", flat=True))
    assert events == {"payments.voucher.voided", "payments.voucher.issued"}
    # A second click finds the replacement instead of issuing another one.
    assert vouchers.voucher_replace(voucher_id=voucher.pk, actor="x", reason="again") == replacement
    no_reason = action_post(
        admin_client, ADMIN, "void_vouchers", [replacement.pk], confirm="yes", reason=""
    )
    assert no_reason.status_code == 200
    assert Voucher.objects.get(pk=replacement.pk).status == "issued"


@pytest.mark.django_db
def test_preview_degrades_when_the_renderer_is_not_configured(operator_client, voucher, settings):
    settings.VOUCHER_RENDERER_URL = ""
    body = operator_client.get(f"/api/v1/vouchers/{voucher.pk}/preview").json()
    assert (body["status"], body["degraded"], body["voucher_code"]) == (
        "not_configured",
        True,
        voucher.code,
    )


@pytest.mark.django_db
def test_preview_times_out_and_the_admin_shows_the_degraded_copy(
    hanging_handler, operator_client, admin_client, voucher, settings, httpserver
):

    httpserver.expect_request("/render").respond_with_handler(hanging_handler(1.5))
    settings.VOUCHER_RENDERER_URL = httpserver.url_for("/render")
    settings.VOUCHER_RENDERER_TIMEOUT_SECONDS = 0.3
    assert operator_client.get(f"/api/v1/vouchers/{voucher.pk}/preview").json()["status"] == (
        "timeout"
    )
    page = admin_client.get(f"{ADMIN}{voucher.pk}/change/").content.decode()
    assert 'data-testid="voucher-preview-degraded"' in page
    assert "Voucher previews unavailable; fallback to code view." in page
    assert voucher.code in page


@pytest.mark.django_db
def test_preview_renders_the_png(operator_client, voucher, settings, httpserver):
    httpserver.expect_request("/render", method="POST").respond_with_data(
        PNG, content_type="image/png"
    )
    settings.VOUCHER_RENDERER_URL = httpserver.url_for("/render")
    body = operator_client.get(f"/api/v1/vouchers/{voucher.pk}/preview").json()
    assert (body["status"], body["degraded"], body["content_type"]) == ("ok", False, "image/png")
    import base64

    assert base64.b64decode(body["image_base64"]) == PNG
    # (a hung request from an earlier test may land in the log late; look for ours)
    assert voucher.code in [request.json["code"] for request, _ in httpserver.log]


@pytest.mark.django_db
def test_integrations_status_reports_colours_and_force_reprobes(
    viewer_client, operator_client, settings, httpserver
):
    settings.VOUCHER_RENDERER_URL = ""
    body = viewer_client.get("/api/integrations/status").json()
    by_name = {item["name"]: item for item in body["integrations"]}
    assert by_name["voucher_png"]["status"] == "red"
    assert by_name["voucher_png"]["detail"] == "not_configured"
    assert by_name["email_channel"]["status"] == "amber"
    assert body["status"] == "red"

    httpserver.expect_request("/render").respond_with_data(PNG, content_type="image/png")
    settings.VOUCHER_RENDERER_URL = httpserver.url_for("/render")
    cached = viewer_client.get("/api/integrations/status").json()
    assert {i["name"]: i["status"] for i in cached["integrations"]}["voucher_png"] == "red"
    # A viewer may read the cached colours; forcing a probe is an operator's call.
    refused = viewer_client.get("/api/integrations/status?force=true")
    assert (refused.status_code, error_of(refused)["code"]) == (403, "OPS-403-FORBIDDEN")
    assert IntegrationProbe.objects.get(name="voucher_png").status == "red"
    forced = operator_client.get("/api/integrations/status?force=true").json()
    assert {i["name"]: i["status"] for i in forced["integrations"]}["voucher_png"] == "green"
    assert IntegrationProbe.objects.get(name="voucher_png").status == "green"
    bad = viewer_client.get("/api/integrations/status?force=maybe")
    assert (bad.status_code, error_of(bad)["code"]) == (400, "OPS-400-INVALID-PAYLOAD")


@pytest.mark.django_db
def test_staff_fix_a_scope_mismatch_with_a_reason_and_the_station_then_redeems(
    admin_client, voucher
):
    """The station runbook's remedy: the voucher's scope is changed in the admin, audited with
    the reason, and the station that was refused can redeem it."""
    url = f"{ADMIN}{voucher.pk}/change/"
    refused = station_client("porto-2").post(
        "/api/station/redeem", {"code": voucher.code}, format="json"
    )
    assert error_of(refused)["code"] == "PAY-403-STATION-SCOPE-MISMATCH"
    without_reason = admin_client.post(url, {"station_scope": "porto-2"})
    assert without_reason.status_code == 200  # the form again, asking for the reason
    bad = admin_client.post(url, {"station_scope": "porto 2!", "reason": "typo"})
    assert bad.status_code == 200
    assert Voucher.objects.get(pk=voucher.pk).station_scope == "lisbon-1,lisbon-2"
    scope = "lisbon-1,lisbon-2,porto-2"
    saved = admin_client.post(url, {"station_scope": scope, "reason": "ticket 77"})
    assert saved.status_code == 302
    event = AuditEvent.objects.get(event="payments.voucher.rescoped")
    assert (event.before_state["station_scope"], event.after_state["station_scope"]) == (
        "lisbon-1,lisbon-2",
        scope,
    )
    assert (event.actor, event.reason) == ("root", "ticket 77")
    redeemed = station_client("porto-2").post(
        "/api/station/redeem", {"code": voucher.code}, format="json"
    )
    assert redeemed.status_code == 200, redeemed.content
    # A redeemed voucher's scope is history: the form shows it read-only.
    page = admin_client.get(url).content.decode()
    assert 'name="station_scope"' not in page
