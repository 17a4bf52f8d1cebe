from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_documents_every_agent_endpoint(schema):
    paths = schema["paths"]

    assert "post" in paths["/api/v1/actions/"]
    assert "get" in paths["/api/v1/actions/{request_id}/"]
    assert "get" in paths["/api/v1/actions/{request_id}/wait"]
    assert "post" in paths["/api/v1/actions/{request_id}/cancel/"]


def test_schema_documents_each_status_the_submit_endpoint_returns(schema):
    statuses = set(schema["paths"]["/api/v1/actions/"]["post"]["responses"])

    assert {"200", "201", "400", "401", "409", "413", "415", "422"} <= statuses


def test_schema_declares_bearer_auth(schema):
    assert schema["components"]["securitySchemes"]["AgentKey"]["scheme"] == "bearer"


def test_docs_page_serves_swagger_from_our_own_static_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn" not in html.lower()
