"""AI help fails open (the specification's OpenAI enhancement): an incident's draft write-up
from a local server speaking the chat completions wire format, and, when it times out,
rate-limits, fails or answers garbage, the raw material with `enhanced: false` and the
`fallbackReason`, never an error. Personal data is masked before it leaves; every use is
audited."""

from __future__ import annotations

import json
import time

import pytest
from werkzeug import Request, Response

from opsconsole.incidents.records import incident_note_add, incident_open
from opsconsole.models import AuditEvent
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory

DRAFT = "Summary: refunds failed for 40 minutes.\nRoot cause: unknown."
CUSTOMER = "maria.lopez@example.test"


def completion(content: str) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1765000000,
        "model": "ops-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


@pytest.fixture
def incident(db):
    operator = UserFactory(username="opal", groups=["Support operator"])
    opened = incident_open(
        title="Refunds failing at Stripe", severity="sev2", actor=operator, reason="pager"
    )
    incident_note_add(
        incident_id=opened.pk,
        text=f"Customer {CUSTOMER} could not get her refund; see https://pay.example.test/s/tok123",
        actor=operator,
    )
    return opened, token_client(operator)


def draft(client, incident_id: int):
    response = client.post(f"/api/v1/incidents/{incident_id}/draft-write-up", format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_the_model_drafts_the_write_up_from_masked_material(ai_model, incident):
    opened, client = incident
    ai_model.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        completion(DRAFT)
    )
    assert draft(client, opened.pk) == {"enhanced": True, "draft": DRAFT, "fallbackReason": None}
    request, _ = ai_model.log[0]
    assert request.headers["Authorization"] == "Bearer sk-local-test"
    sent = json.loads(request.get_data())
    assert sent["model"] == "ops-model"
    material = sent["messages"][1]["content"]
    assert "Refunds failing at Stripe" in material and "could not get her refund" in material
    # Nothing personal leaves: the address masked, the link reduced to its host.
    assert CUSTOMER not in material and "tok123" not in material
    assert "https://pay.example.test/***" in material
    used = AuditEvent.objects.get(event="platform.ai_help.used")
    assert (used.actor, used.object_id, used.metadata["enhanced"]) == ("opal", str(opened.pk), True)
    # A client that retries with its Idempotency-Key gets the same draft: one call, one row.
    url = f"/api/v1/incidents/{opened.pk}/draft-write-up"
    first = client.post(url, format="json", HTTP_IDEMPOTENCY_KEY="draft-1")
    again = client.post(url, format="json", HTTP_IDEMPOTENCY_KEY="draft-1")
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert len(ai_model.log) == 2
    assert AuditEvent.objects.filter(event="platform.ai_help.used").count() == 2


def slow(request: Request) -> Response:
    time.sleep(2)
    return Response(json.dumps(completion(DRAFT)), content_type="application/json")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda m: m.respond_with_handler(slow), "timeout"),
        (
            lambda m: m.respond_with_json(
                {"error": {"message": "Rate limit reached", "type": "rate_limit"}},
                status=429,
                headers={"Retry-After": "20"},
            ),
            "rate_limited",
        ),
        (lambda m: m.respond_with_data("upstream down", status=503), "unavailable"),
        (lambda m: m.respond_with_data("<html>not json</html>", status=200), "invalid_response"),
        (lambda m: m.respond_with_json(completion("   ")), "invalid_response"),
        (lambda m: m.respond_with_json({"choices": []}), "invalid_response"),
    ],
)
@pytest.mark.django_db
def test_any_failure_gives_the_raw_material_and_its_reason(
    ai_model, incident, settings, answer, reason
):
    settings.AI_TIMEOUT_SECONDS = 1
    opened, client = incident
    answer(ai_model.expect_request("/v1/chat/completions", method="POST"))
    started = time.monotonic()
    answered = draft(client, opened.pk)
    assert time.monotonic() - started < 5  # no retry behind the operator's back
    assert (answered["enhanced"], answered["fallbackReason"]) == (False, reason)
    # The operator's own material, unmasked: it never left.
    assert "Refunds failing at Stripe" in answered["draft"] and CUSTOMER in answered["draft"]
    used = AuditEvent.objects.get(event="platform.ai_help.used")
    assert used.metadata["fallback_reason"] == reason
    if reason == "timeout":
        time.sleep(1.5)  # the server logs the slow call once it has answered it
    assert len(ai_model.log) == 1  # asked once: no retry


@pytest.mark.django_db
def test_off_unless_configured_and_viewers_cannot_ask(incident, settings):
    settings.AI_API_BASE_URL = ""
    opened, client = incident
    answered = draft(client, opened.pk)
    assert (answered["enhanced"], answered["fallbackReason"]) == (False, "not_configured")
    viewer = token_client(UserFactory(username="vera", groups=["Support viewer"]))
    refused = viewer.post(f"/api/v1/incidents/{opened.pk}/draft-write-up", format="json")
    assert refused.status_code == 403
    assert AuditEvent.objects.filter(event="platform.ai_help.used").count() == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ('{"instructions": "ignore the notes"}', "application/json", 400, "instructions"),
        ('["x"]', "application/json", 400, "body"),
        ("[]", "application/json", 400, "body"),
        ("null", "application/json", 400, "body"),
        ("{not json", "application/json", 400, None),
        ('{"instructions": "x"}', "", 415, None),
        ("instructions=x", "application/x-www-form-urlencoded", 415, None),
    ],
    ids=["a-field", "not-an-object", "an-empty-list", "null", "garbage", "no-type", "a-form"],
)
def test_the_draft_takes_no_body_and_refuses_one(incident, body, content_type, status, field):
    """A field sent to a route that takes none is refused, not ignored; nothing is asked of
    the AI help and nothing is audited."""
    opened, client = incident
    url = f"/api/v1/incidents/{opened.pk}/draft-write-up"
    # generic(): a body sent as it is, with no media type when none is given.
    refused = client.generic("POST", url, body.encode(), content_type=content_type)
    assert refused.status_code == status, refused.content
    error = refused.json()["error"]
    if field is not None:
        assert error["details"]["fields"][field] == ["This route takes no body."]
    assert not AuditEvent.objects.filter(event="platform.ai_help.used").exists()
    assert client.post(url, "{}", content_type="application/json").status_code == 200


@pytest.mark.django_db
def test_a_failure_group_is_summed_up_in_plain_language_or_described_as_it_is(ai_model, settings):
    from recovery.inbox.groups import failure_groups
    from tests.recovery.factories import IntegrationFactory, ParkedItemFactory

    integration = IntegrationFactory(name="crm")
    ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    [group] = failure_groups()
    client = token_client(UserFactory(username="opal", groups=["Support operator"]))
    url = f"/api/v1/failures/groups/{group.fingerprint}/summary"
    ai_model.expect_oneshot_request("/v1/chat/completions").respond_with_json(
        completion("The CRM partner answers 503 to every delivery; check its status page.")
    )
    summed = client.post(url, format="json").json()
    assert summed["enhanced"] is True and "503" in summed["text"]
    assert "HTTP_503" in json.loads(ai_model.log[0][0].get_data())["messages"][1]["content"]
    ai_model.expect_oneshot_request("/v1/chat/completions").respond_with_data("down", status=502)
    described = client.post(url, format="json").json()
    assert (described["enhanced"], described["fallbackReason"]) == (False, "unavailable")
    assert json.loads(described["text"])["fingerprint"] == group.fingerprint
    assert client.post("/api/v1/failures/groups/ffff/summary", format="json").status_code == 404
    # It takes no body either: a field sent to it is refused, and nothing is asked.
    refused = client.post(url, {"instructions": "x"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["details"]["fields"] == {
        "instructions": ["This route takes no body."]
    }
    uses = AuditEvent.objects.filter(event="platform.ai_help.used", object_id=group.fingerprint)
    assert uses.count() == 2
    assert len(ai_model.log) == 2


@pytest.mark.django_db
def test_the_material_stays_whole_json_under_its_limit(incident):
    """A long incident: readyz snapshots reduced to what was not ready, the middle ones left
    out (and counted) until the material fits; never cut in the middle of a value."""
    from opsconsole.incidents.records import WRITEUP_MATERIAL_CHARS, incident_writeup_material
    from opsconsole.models import IncidentCapture

    opened, _ = incident
    for n in range(60):
        IncidentCapture.objects.create(
            incident=opened,
            kind=IncidentCapture.Kind.READYZ,
            payload={
                "status": "degraded",
                "components": {
                    "database": {"status": "ready", "details": {"latency_ms": 1.0}},
                    **{
                        f"worker_{k}": {"status": "degraded", "details": {"note": "x" * 200}}
                        for k in range(3)
                    },
                    "marker": {"status": "error", "details": {"snapshot": n}},
                },
            },
        )
    text = incident_writeup_material(opened)
    assert len(text) <= WRITEUP_MATERIAL_CHARS
    material = json.loads(text)  # whole: it parses
    snapshots = material["readyz"]
    assert "database" not in snapshots[0]["not_ready"]  # only what was not ready
    assert snapshots[0]["not_ready"]["marker"]["details"]["snapshot"] == 0
    assert snapshots[-1]["not_ready"]["marker"]["details"]["snapshot"] == 59  # the newest kept
    assert material["left_out_to_fit"]["readyz_snapshots"] == 60 - len(snapshots) > 0
    assert "could not get her refund" in text  # the notes are all there
