"""Every error under /api/ is the JSON error shape, with DEBUG on and off, and the schema documents them."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseServerError
from django.test import Client, RequestFactory

from core.responses import ApiJsonErrorsMiddleware

pytestmark = pytest.mark.django_db


def assert_json_error(response, *, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    error = json.loads(response.content)["error"]
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/v1/nope/", "/api/v1/policies/null,null/", "/api/v1/%00/"])
def test_an_unknown_or_malformed_api_path_is_a_json_404(settings, debug, path):
    settings.DEBUG = debug

    assert_json_error(Client().get(path), status=404, code="not_found")


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_a_method_the_api_does_not_take_is_a_json_405_with_allow(api, settings, debug):
    settings.DEBUG = debug

    response = api.delete("/api/v1/actions/")

    assert_json_error(response, status=405, code="method_not_allowed")
    assert "POST" in response["Allow"]


def test_a_non_json_405_from_django_is_turned_into_the_shape_and_keeps_allow():
    middleware = ApiJsonErrorsMiddleware(lambda request: HttpResponseNotAllowed(["POST"]))

    response = middleware(RequestFactory().get("/api/v1/anything"))

    assert_json_error(response, status=405, code="method_not_allowed")
    assert response["Allow"] == "POST"


def test_a_debug_html_500_under_api_becomes_a_json_500():
    middleware = ApiJsonErrorsMiddleware(lambda request: HttpResponseServerError("<html>Traceback</html>"))

    response = middleware(RequestFactory().post("/api/v1/actions/"))

    error = assert_json_error(response, status=500, code="server_error")
    assert "Traceback" not in error["message"]


def test_an_exception_in_an_api_view_is_a_json_500_with_debug_on(settings, monkeypatch):
    from approvals.api import views

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    settings.DEBUG = True
    monkeypatch.setattr(views.ActionDetailView, "get", explode)
    from approvals.services import agent_create

    _, key = agent_create(name="exploding")
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/actions/x/", HTTP_AUTHORIZATION=f"Bearer {key}")

    assert_json_error(response, status=500, code="server_error")


def test_pages_outside_the_api_keep_their_html_errors(settings):
    settings.DEBUG = True

    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_successful_non_json_api_responses_are_left_alone():
    middleware = ApiJsonErrorsMiddleware(lambda request: HttpResponse("<html>docs</html>"))

    response = middleware(RequestFactory().get("/api/docs/"))

    assert response.content == b"<html>docs</html>"


def test_every_operation_that_takes_a_body_documents_400_413_and_422_with_the_limit_codes():
    import yaml

    schema = yaml.safe_load(Client().get("/api/schema/").content)
    with_bodies = [
        (path, method, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]

    assert with_bodies
    for path, method, operation in with_bodies:
        responses = operation["responses"]
        assert {"400", "413", "422"} <= set(responses), (method, path)
        assert "json_too_deep" in responses["422"]["description"], (method, path)
        assert responses["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_handler500_answers_json_under_the_api_and_html_elsewhere(settings, debug):
    from core.responses import handler500

    settings.DEBUG = debug

    api = handler500(RequestFactory().get("/api/v1/actions/"))
    page = handler500(RequestFactory().get("/queue/"))

    assert_json_error(api, status=500, code="server_error")
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")


def test_every_operation_documents_401_when_it_needs_credentials_404_with_path_parameters_and_415_with_a_body():
    import yaml

    schema = yaml.safe_load(Client().get("/api/schema/").content)
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]

    for name, operation in operations:
        documented = set(operation["responses"])
        if any(operation.get("security", [])):
            assert "401" in documented, name
        if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
            assert "404" in documented, name
        if "requestBody" in operation:
            assert "415" in documented, name


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/v1/review/queue?q=a%00b", "/queue/cards.json?agent=%00", "/api/v1/export/?x%00=1"]
)
def test_a_nul_in_a_query_parameter_is_a_json_400_on_every_path(client, path):
    response = client.get(path)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_characters"
