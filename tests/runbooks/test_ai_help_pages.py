"""The AI help as an operator meets it in the browser (docs/runbooks/incident-response.md):
on an open incident's page, "Draft the write-up with AI help…" drafts it from a local server
speaking the chat completions wire format; when that server fails, the same button gives
the material itself with the reason, never an error. On a failure group's page, "Summarize
with AI help…" does the same. A viewer is offered neither."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from opsconsole.incidents.records import incident_note_add, incident_open
from opsconsole.models import AuditEvent, Incident
from recovery import services
from tests.opsconsole.incidents.test_ai_help import completion
from tests.recovery.factories import ParkedItemFactory
from tests.runbooks.walk import OPERATOR, VIEWER, Walk, support_staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DRAFT = "Summary: refunds failed at Stripe for 40 minutes.\nRoot cause: an expired API key."
CUSTOMER = "maria.lopez@example.test"


def test_an_operator_drafts_a_write_up_and_summarizes_a_group_even_when_the_model_fails(
    page, live_server, ai_model
):
    operator, _ = support_staff()
    incident = incident_open(
        title="Refunds failing at Stripe", severity="sev2", actor=operator, reason="pager"
    )
    incident_note_add(
        incident_id=incident.pk, text=f"{CUSTOMER} could not get her refund", actor=operator
    )
    integration = services.integration_create(name="erp", endpoint_url="https://x.test", actor="t")
    ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    walk = Walk(page, live_server.url, "ai-help")
    ai_model.expect_ordered_request("/v1/chat/completions", method="POST").respond_with_json(
        completion(DRAFT)
    )
    ai_model.expect_ordered_request("/v1/chat/completions", method="POST").respond_with_data(
        "upstream overloaded", status=503
    )
    ai_model.expect_ordered_request("/v1/chat/completions", method="POST").respond_with_data(
        "<html>bad gateway</html>", status=200, content_type="text/html"
    )

    walk.log_in(OPERATOR)
    walk.open("/admin/platform/incident/")
    walk.link("Refunds failing at Stripe")
    page.get_by_test_id("object-link-ai_draft").click()
    expect(page.get_by_test_id("ai-help")).to_contain_text("personal data masked first")
    page.get_by_role("button", name="Draft with AI help").click()
    expect(page.get_by_test_id("ai-help-status")).to_contain_text("Drafted by the AI help")
    expect(page.get_by_label("Draft")).to_have_value(DRAFT)
    walk.shot("drafted")

    # The model fails: the operator gets the material itself and the reason.
    page.get_by_role("button", name="Draft with AI help").click()
    expect(page.get_by_test_id("ai-help-status")).to_contain_text(
        "The AI help is down (unavailable)"
    )
    expect(page.get_by_label("Material")).to_contain_text("could not get her refund")
    walk.shot("fell-back")
    page.get_by_role("link", name="Back to the incident").click()
    expect(page.get_by_test_id("object-link-ai_draft")).to_be_visible()
    assert Incident.objects.get(pk=incident.pk).status == Incident.Status.OPEN
    used = list(
        AuditEvent.objects.filter(event="platform.ai_help.used")
        .order_by("id")
        .values_list("metadata", flat=True)
    )
    assert [(row["enhanced"], row["fallback_reason"]) for row in used] == [
        (True, ""),
        (False, "unavailable"),
    ]

    # A failure group, summarized; the model answers garbage this time.
    page.get_by_role("link", name="Failure inbox").click()
    page.get_by_test_id("failure-group").get_by_role("link", name="HTTP_503").click()
    page.get_by_test_id("ai-summary").click()
    page.get_by_role("button", name="Summarize with AI help").click()
    expect(page.get_by_test_id("ai-help-status")).to_contain_text(
        "The AI help answered with something unusable (invalid_response)"
    )
    expect(page.get_by_label("Material")).to_contain_text("HTTP_503")
    walk.shot("group-summary-fell-back")

    # A viewer is offered neither button.
    walk.log_in(VIEWER)
    walk.open(f"/admin/platform/incident/{incident.pk}/change/")
    expect(page.get_by_test_id("object-link-ai_draft")).to_have_count(0)
    walk.open(f"/admin/platform/incident/{incident.pk}/ai-draft/")
    expect(page.get_by_role("heading", name="This page is not for your role")).to_be_visible()
