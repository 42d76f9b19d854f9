"""A caller's X-Request-ID is kept as given only when well-formed, and always beside an id
the server minted: nobody can plant another request's id and be found by it."""

from __future__ import annotations

import pytest

from opsconsole.models import AuditEvent
from recovery.cases.refs import user_ref
from tests.bookings.factories import ResourceFactory, slot
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory

HOLDS = "/api/v1/bookings/holds"


def hold(client, resource, hour: int, **headers):
    start, end = slot(hour)
    body = {
        "resource_id": resource.pk,
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
    }
    response = client.post(HOLDS, body, format="json", **headers)
    assert response.status_code == 201, response.content
    return response


@pytest.mark.django_db
def test_a_planted_request_id_does_not_put_its_sender_in_another_requests_case():
    resource = ResourceFactory()
    ana = UserFactory(username="ana", groups=["Booking client"])
    mallory = UserFactory(username="mallory", groups=["Booking client"])
    ana_id = hold(token_client(ana), resource, 9)["X-Request-ID"]
    planted = hold(token_client(mallory), resource, 12, HTTP_X_REQUEST_ID=ana_id)
    assert planted["X-Request-ID"] == ana_id  # the caller's id is echoed as given

    rows = AuditEvent.objects.filter(event="booking.hold.created").order_by("id")
    ana_row, mallory_row = rows
    assert ana_row.request_id == ana_row.server_request_id == ana_id
    assert mallory_row.request_id == ana_id
    assert mallory_row.server_request_id not in ("", ana_id)
    assert len(mallory_row.server_request_id) == 32

    lead = token_client(UserFactory(username="lead", groups=["Support operator"]))
    found = lead.get("/api/v1/cases", {"q": ana_id}).json()["matches"]
    assert [match["ref"] for match in found] == [user_ref(ana.pk)]
    by_server_id = lead.get("/api/v1/cases", {"q": mallory_row.server_request_id}).json()
    assert [match["ref"] for match in by_server_id["matches"]] == [user_ref(mallory.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["bad id\n<script>", "x" * 129, "é-unicode", "a b"])
def test_a_malformed_request_id_is_replaced_by_the_servers(anonymous_client, sent):
    response = anonymous_client.get("/api/v1/health/livez", HTTP_X_REQUEST_ID=sent)
    assert response["X-Request-ID"] != sent
    assert len(response["X-Request-ID"]) == 32
