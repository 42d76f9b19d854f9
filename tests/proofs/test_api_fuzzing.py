"""schemathesis against /api/schema/: generated requests, valid and invalid, to every route.

Whatever comes in, the API answers without a 500, and every error is the JSON envelope.
(The operations are walked by hand: schemathesis' pytest plugin does not run on pytest 9.)
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from knox.models import AuthToken

from tests.helpers import repeatable_examples, schema_operations
from tests.opsconsole.factories import UserFactory

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def api_operations(db):
    with schema_operations() as operations:
        yield operations


def check_envelope(case, response) -> None:
    where = (case.method, case.formatted_path, response.status_code, response.text[:300])
    assert response.status_code < 500 or response.status_code == 503, where
    if response.status_code >= 400:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), where
        body = json.loads(response.text)
        assert set(body) == {"error"}, where
        assert {"code", "message", "details", "request_id"} <= set(body["error"]), where


@pytest.mark.django_db
def test_no_500_and_every_error_is_the_envelope(api_operations):
    _, token = AuthToken.objects.create(
        user=UserFactory(username="fuzz-operator", groups=["Support operator"])
    )
    assert len(api_operations) >= 20
    for operation in api_operations:

        @repeatable_examples(EXAMPLES_PER_OPERATION)
        @given(case=operation.as_strategy())
        def fuzz(case) -> None:
            check_envelope(case, case.call(headers={"Authorization": f"Token {token}"}))

        fuzz()


@pytest.mark.django_db
def test_anonymous_callers_get_the_envelope_too(api_operations):
    for operation in api_operations:

        @repeatable_examples(3)
        @given(case=operation.as_strategy())
        def fuzz(case) -> None:
            check_envelope(case, case.call())

        fuzz()
