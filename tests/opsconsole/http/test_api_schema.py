"""The OpenAPI schema describes every route as it behaves: its error envelope answers and,
where the handler honours one, the Idempotency-Key header."""

from __future__ import annotations

import re

import pytest
from django.urls import URLResolver, get_resolver

UNSAFE = {"post", "put", "patch", "delete"}
# Webhooks are deduplicated by the provider's own event id, not by a client's key.
KEYLESS = {("post", "/webhooks/stripe"), ("post", "/webhooks/anymail/resend/tracking/")}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def test_every_route_of_the_api_is_in_the_schema(schema):
    documented = {re.sub(r"\{[^}]+\}", "*", path) for path in schema["paths"]}
    served = {
        "/" + re.sub(r"<[^>]+>", "*", route)
        for route in routes(get_resolver().url_patterns)
        if route.startswith(("api/", "platform/", "webhooks/"))
    }
    assert served - documented == {"/api/schema/", "/api/docs/", "/api/redoc/"}


def test_every_operation_declares_its_errors_in_the_envelope(schema):
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    for method, path, operation in operations(schema):
        errors = {status for status in operation["responses"] if status[0] in "45"}
        assert errors, (method, path)
        for status in errors:
            if (path, status) == ("/api/v1/health/readyz", "503"):
                continue  # readyz answers its own report (docs/runbooks/incident-response.md)
            body = operation["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path, status)
        if method in UNSAFE:
            assert "400" in errors, (method, path)
        if {} not in operation.get("security", [{}]):  # credentials are required
            assert {"401", "403"} <= errors, (method, path)
        assert {"429", "503"} <= errors or path.startswith("/webhooks/"), (method, path)


def test_every_change_that_takes_an_idempotency_key_says_so(schema):
    keyless = set()
    for method, path, operation in operations(schema):
        if method not in UNSAFE:
            continue
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if "Idempotency-Key" not in headers:
            keyless.add((method, path))
    assert keyless == KEYLESS


def test_the_schema_is_valid_openapi(schema):
    from openapi_spec_validator import validate

    validate(schema)


def test_every_answer_declares_its_request_id_and_replays_say_so(schema):
    for method, path, operation in operations(schema):
        idempotent = any(
            p["in"] == "header" and p["name"] == "Idempotency-Key"
            for p in operation.get("parameters", [])
        )
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            if path.startswith("/webhooks/anymail"):
                continue  # a library's view, documented by hand (no DRF answer)
            assert "X-Request-ID" in headers, (method, path, status)
            if idempotent and status.startswith("2"):
                assert "Idempotent-Replayed" in headers, (method, path, status)


def test_api_tokens_are_described_as_token_and_as_bearer(schema):
    schemes = schema["components"]["securitySchemes"]
    assert "Token <key>" in schemes["apiToken"]["description"]
    assert schemes["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The same key as `Authorization: Bearer <key>`.",
    }


def test_the_idempotency_key_states_its_form_and_its_reuse_answers(schema):
    keyed = 0
    for method, path, operation in operations(schema):
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        if "Idempotency-Key" not in headers:
            continue
        keyed += 1
        key = headers["Idempotency-Key"]["schema"]
        assert (key["minLength"], key["maxLength"]) == (1, 255), (method, path)
        assert re.fullmatch(key["pattern"], "order-42:retry_1")
        assert not re.fullmatch(key["pattern"], "has space")
        assert {"409", "422"} <= set(operation["responses"]), (method, path)
        assert "REUSED" in operation["responses"]["422"]["description"], (method, path)
    assert keyed >= 25


def test_path_ids_are_integers_and_query_limits_have_their_bounds(schema):
    for method, path, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                assert parameter["schema"]["type"] == "integer", (method, path, parameter)
                assert parameter["schema"]["minimum"] == 0
            if parameter["in"] == "query" and parameter["name"] == "limit":
                assert parameter["schema"]["minimum"] == 1, (method, path)
                assert parameter["schema"]["maximum"] == 500, (method, path)


def test_an_offline_payment_for_no_booking_is_a_documented_404(schema):
    responses = schema["paths"]["/api/v1/payments/offline"]["post"]["responses"]
    assert "booking_id" in responses["404"]["description"]
