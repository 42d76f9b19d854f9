"""schemathesis 4 with every check it has, over every operation of /api/schema/: the schema
is the truth about what the API accepts and answers.

The checks: no server error, status codes and content types the schema documents, response
bodies and headers as declared, schema-valid requests accepted (positive data) and invalid
ones refused (negative data), missing or wrong credentials refused. Each operation is tried
with a few generated cases, valid and then invalid, as a Support operator; the run takes
about a minute. (schemathesis' pytest plugin does not run on pytest 9: the operations are walked by
hand, as tests/proofs/test_api_fuzzing.py does.)
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from knox.models import AuthToken
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.contracts.stripe import SECRET as STRIPE_SECRET
from tests.helpers import repeatable_examples, schema_operations
from tests.opsconsole.factories import UserFactory

EXAMPLES_PER_OPERATION = 5

# Operations whose inputs have rules JSON Schema cannot state (one field or another, a time
# in the future, a decimal's range when it is written as text, a signature): a schema-valid
# request may get the 400 envelope naming the field. Every other check still runs on them.
RULES_BEYOND_THE_SCHEMA = {
    # phones (JSON) or a targets CSV, at least one
    "POST /api/v1/campaigns",
    # a fingerprint, or a source and ids
    "POST /api/v1/failures/bulk-actions",
    # override_next_retry_at must lie in the future
    "POST /api/v1/billing/sessions/{session_id}/regenerate",
    # object_id needs object_type
    "GET /api/v1/audit-events",
    # an amount's decimal places depend on its currency (none for JPY, two for EUR)
    "POST /api/v1/billing/sessions",
    # the endpoint must be one the outbound rules allow (a public address, or an allowed host)
    "POST /platform/integrations",
    "PATCH /platform/integrations/{integration_id}",
    # decimals travel as text ("49.90"): from 0.01, and for vouchers up to 100000
    "POST /api/v1/payments/offline",
    "POST /api/v1/vouchers",
    # signed by the provider: Stripe-Signature, or svix-id/-timestamp/-signature
    "POST /webhooks/stripe",
    "POST /webhooks/anymail/resend/tracking/",
}


@pytest.fixture
def api_operations(db, settings):
    # Generated callers come from one address: no rate limit may stand in for the answer
    # the schema promises (the limits have tests of their own).
    settings.API_THROTTLE_RATES = {name: "100000/min" for name in settings.API_THROTTLE_RATES}
    settings.AUTH_TOKEN_FAILURE_LIMIT = 100000
    # The providers' webhooks are configured, so unsigned events get their 400, not the 503
    # of a console that has no signing secret.
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": "whsec_c2NoZW1hLXRlc3Q="}
    with schema_operations() as operations:
        yield operations


@pytest.mark.django_db
def test_every_operation_answers_as_its_schema_says(api_operations):
    _, token = AuthToken.objects.create(
        user=UserFactory(username="schema-operator", groups=["Support operator"])
    )
    auth = {"Authorization": f"Token {token}"}
    failures: dict[str, str] = {}
    for operation in api_operations:
        check_operation(operation, auth, failures)
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
    assert len(api_operations) >= 45


def check_operation(operation, auth: dict[str, str], failures: dict[str, str]) -> None:
    """A few generated cases of one operation, each held to every check; what fails is
    kept in `failures` under the operation's label."""
    label = operation.label
    excluded = [positive_data_acceptance] if label in RULES_BEYOND_THE_SCHEMA else []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        check_cases(operation, mode, auth, excluded, failures)


def check_cases(operation, mode, auth: dict[str, str], excluded: list, failures: dict) -> None:
    label = f"{operation.label} ({mode.value})"

    @repeatable_examples(EXAMPLES_PER_OPERATION)
    @given(case=operation.as_strategy(generation_mode=mode))
    def conforms(case) -> None:
        if isinstance(case.query, dict):
            # A cursor is only ever one the API issued (a page's next_cursor); a made-up
            # one is refused by design.
            case.query.pop("cursor", None)
        if "Idempotency-Key" in (case.headers or {}):
            # A client uses a new key for each change; one key reused with another body
            # is a 422, which is its own test.
            case.headers["Idempotency-Key"] = uuid.uuid4().hex
        response = case.call(headers=auth)
        try:
            case.validate_response(response, headers=auth, excluded_checks=excluded)
        except BaseExceptionGroup as failure:  # collected: one report names them all
            failures.setdefault(
                label,
                f"{failure}\n{response.status_code} {response.text[:300]}",
            )

    try:
        conforms()
    except Unsatisfiable:
        # An operation that takes nothing (no parameter, no body) has no invalid request.
        assert mode == GenerationMode.NEGATIVE, label
