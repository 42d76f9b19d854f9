"""Deliveries as receivers' own libraries take them (standardwebhooks, svix): a producer's event
id that would break their signature check or the request is refused with a 400 at the door;
a receiver that deduplicates on webhook-id, as the specification tells it to, still gets an
operator's corrected payload, which goes under a new webhook-id naming the one it corrects."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

from recovery import services
from recovery.models import Integration, RecoveryItem
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory
from tests.workers import deliver


@pytest.fixture
def partner(operator_client, httpserver) -> tuple[Integration, str]:
    created = operator_client.post(
        "/platform/integrations",
        {
            "name": "partner",
            "endpoint_url": httpserver.url_for("/hooks/partner"),
            "event_types": ["booking.confirmed"],
        },
        format="json",
    ).json()
    return Integration.objects.get(pk=created["id"]), created["signing_secret"]


def producer():
    return token_client(UserFactory(username="shop", groups=["Event producer"]))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "event_id",
    ["evt_ünï", "evt-1\r\nX-Injected: 1", "evt.1", "evt 1", "", "e" * 201],
    ids=["non-ascii", "crlf", "dot", "space", "empty", "too-long"],
)
def test_an_event_id_receivers_could_not_verify_is_a_400_and_queues_nothing(partner, event_id):
    integration, _ = partner
    response = producer().post(
        f"/platform/integrations/{integration.pk}/events",
        {"event_type": "booking.confirmed", "payload": {"n": 1}, "event_id": event_id},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "event_id" in error_of(response)["details"]["fields"]
    assert not RecoveryItem.objects.filter(integration=integration).exists()


@pytest.mark.django_db
def test_an_edited_replay_goes_under_a_new_webhook_id_and_both_libraries_verify_it(
    partner, httpserver, operator
):
    integration, secret = partner
    accepted = producer().post(
        f"/platform/integrations/{integration.pk}/events",
        {"event_type": "booking.confirmed", "payload": {"booking_id": 7}, "event_id": "evt_42"},
        format="json",
    )
    assert accepted.status_code == 202, accepted.content
    item = RecoveryItem.objects.get(pk=accepted.json()["id"])
    RecoveryItem.objects.filter(pk=item.pk).update(max_attempts=1)
    httpserver.expect_oneshot_request("/hooks/partner").respond_with_data("bad", status=400)
    deliver()
    httpserver.expect_oneshot_request("/hooks/partner").respond_with_json({"ok": True})
    services.recovery_item_edit_and_replay(
        integration_id=integration.pk,
        item_id=item.pk,
        payload={"booking_id": 8},
        actor=operator,
        reason="wrong booking id",
    )
    deliver()

    (first, _), (corrected, _) = httpserver.log
    for request, body in ((first, {"booking_id": 7}), (corrected, {"booking_id": 8})):
        headers = dict(request.headers)
        assert StandardWebhook(secret).verify(request.get_data(), headers) == body
        svix_headers = {
            "svix-id": headers["Webhook-Id"],
            "svix-timestamp": headers["Webhook-Timestamp"],
            "svix-signature": headers["Webhook-Signature"],
        }
        SvixWebhook(secret).verify(request.get_data(), svix_headers)  # raises when it fails
    # A receiver keeping the ids it has seen takes the correction as a new message, and can
    # link it to the one it corrects; the Idempotency-Key is new as well.
    assert first.headers["webhook-id"] != corrected.headers["webhook-id"]
    assert corrected.headers["X-Ops-Corrects-Webhook-Id"] == first.headers["webhook-id"]
    assert first.headers["Idempotency-Key"] != corrected.headers["Idempotency-Key"]
    assert "X-Ops-Corrects-Webhook-Id" not in first.headers
    item.refresh_from_db()
    assert item.status == RecoveryItem.Status.SUCCEEDED
    assert item.payload == {"booking_id": 7}  # the original is kept


@pytest.mark.django_db
def test_a_410_gone_pauses_the_integration_with_an_audit_row_an_alert_and_an_inbox_entry(
    partner, httpserver
):
    from opsconsole.models import Alert, AuditEvent
    from recovery.inbox.groups import failure_groups

    integration, _ = partner
    shop = producer()

    def send(n: int):
        return shop.post(
            f"/platform/integrations/{integration.pk}/events",
            {"event_type": "booking.confirmed", "payload": {"n": n}},
            format="json",
        )

    httpserver.expect_request("/hooks/partner").respond_with_data("gone", status=410)
    first = RecoveryItem.objects.get(pk=send(1).json()["id"])
    deliver()
    first.refresh_from_db()
    assert (first.status, first.failure_code) == (RecoveryItem.Status.FAILED, "HTTP_410")
    integration.refresh_from_db()
    assert integration.paused and "410 Gone" in integration.paused_reason
    paused = AuditEvent.objects.get(
        event="platform.integration.paused", object_id=str(integration.pk)
    )
    assert (paused.actor, paused.metadata["item_id"]) == (
        "worker:integration_delivery_worker",
        first.pk,
    )
    assert Alert.objects.filter(kind="integration_endpoint_gone").count() == 1
    assert [g.failure_code for g in failure_groups(source="integration_delivery")] == ["HTTP_410"]

    # The next event waits; nothing more goes to the endpoint that said it is gone.
    send(2)
    deliver()
    assert len(httpserver.log) == 1


@pytest.mark.django_db
def test_an_integration_that_asks_for_it_gets_the_standard_webhooks_body(
    operator_client, httpserver
):
    created = operator_client.post(
        "/platform/integrations",
        {
            "name": "standard-partner",
            "endpoint_url": httpserver.url_for("/hooks/standard"),
            "event_types": ["booking.confirmed"],
            "body_format": "standard_webhooks",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["body_format"] == "standard_webhooks"
    integration = Integration.objects.get(pk=created.json()["id"])
    accepted = producer().post(
        f"/platform/integrations/{integration.pk}/events",
        {"event_type": "booking.confirmed", "payload": {"booking_id": 7}},
        format="json",
    )
    assert accepted.status_code == 202, accepted.content
    httpserver.expect_request("/hooks/standard").respond_with_json({"ok": True})

    deliver()

    (request, _) = httpserver.log[0]
    body = StandardWebhook(created.json()["signing_secret"]).verify(
        request.get_data(), dict(request.headers)
    )
    assert set(body) == {"type", "timestamp", "data"}
    assert (body["type"], body["data"]) == ("booking.confirmed", {"booking_id": 7})
    item = RecoveryItem.objects.get(pk=accepted.json()["id"])
    assert body["timestamp"] == item.created_at.isoformat().replace("+00:00", "Z")


@pytest.mark.django_db
def test_an_integration_keeps_the_plain_payload_body_unless_it_asks(partner, httpserver):
    integration, secret = partner
    assert integration.body_format == Integration.BodyFormat.PAYLOAD
    producer().post(
        f"/platform/integrations/{integration.pk}/events",
        {"event_type": "booking.confirmed", "payload": {"booking_id": 9}},
        format="json",
    )
    httpserver.expect_request("/hooks/partner").respond_with_json({"ok": True})
    deliver()
    (request, _) = httpserver.log[0]
    assert StandardWebhook(secret).verify(request.get_data(), dict(request.headers)) == {
        "booking_id": 9
    }
