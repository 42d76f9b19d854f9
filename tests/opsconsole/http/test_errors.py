from __future__ import annotations

import pytest

from tests.helpers import error_of

pytestmark = pytest.mark.urls("tests.opsconsole.urls_for_tests")


@pytest.mark.smoke
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/platform/nothing/here", "/api/x"])
def test_it_answers_unknown_api_routes_with_a_json_404(anonymous_client, path):
    response = anonymous_client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert error_of(response)["code"] == "OPS-404-NOT-FOUND"


@pytest.mark.smoke
@pytest.mark.django_db
def test_it_answers_anonymous_callers_with_a_401_envelope(anonymous_client):
    response = anonymous_client.post("/api/v1/test/charges", {"amount": 1}, format="json")
    assert response.status_code == 401
    assert error_of(response)["code"] == "TST-401-UNAUTHENTICATED"
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.smoke
@pytest.mark.django_db
def test_it_rejects_a_bad_token_with_401(anonymous_client):
    anonymous_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = anonymous_client.post("/api/v1/test/charges", {"amount": 1}, format="json")
    assert response.status_code == 401
    assert error_of(response)["code"] == "TST-401-UNAUTHENTICATED"


@pytest.mark.smoke
@pytest.mark.django_db
def test_it_reports_validation_errors_as_400_with_field_details(outsider_client):
    response = outsider_client.post("/api/v1/test/charges", {"amount": 0}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "TST-400-INVALID-PAYLOAD"
    assert "amount" in error["details"]["fields"]


@pytest.mark.django_db
def test_it_reports_malformed_json_as_400(outsider_client):
    response = outsider_client.post(
        "/api/v1/test/charges", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "TST-400-INVALID-PAYLOAD"


@pytest.mark.django_db
def test_it_reports_an_unsupported_media_type_as_415(outsider_client):
    response = outsider_client.post(
        "/api/v1/test/charges", data="amount=1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "TST-415-UNSUPPORTED-MEDIA-TYPE"


@pytest.mark.django_db
def test_it_reports_a_wrong_method_as_405(outsider_client):
    response = outsider_client.delete("/api/v1/test/charges")
    assert response.status_code == 405
    assert error_of(response)["code"] == "TST-405-METHOD-NOT-ALLOWED"


@pytest.mark.django_db
def test_it_hides_the_traceback_of_an_unhandled_exception(outsider_client):
    response = outsider_client.get("/api/v1/test/boom")
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "OPS-500-INTERNAL-ERROR"
    assert "secret internal detail" not in response.content.decode()
    assert "Traceback" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_it_fails_closed_with_503_when_the_database_is_down(outsider_client, database_down):
    response = outsider_client.post("/api/v1/test/charges", {"amount": 1}, format="json")
    assert response.status_code == 503
    assert error_of(response)["code"] == "TST-503-DEPENDENCY-UNAVAILABLE"
    assert response["Retry-After"]


@pytest.mark.django_db
def test_it_keeps_html_error_pages_outside_the_api(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
