"""The whole OpenAPI schema, fuzzed by schemathesis against the live server, as an agent and as staff
(and the reviewer API as a reviewer with a personal access token).

Every operation is called with generated valid and invalid input; every response must be no 5xx,
have a status the schema documents for that operation, the documented content type and a body
matching the documented schema. Seeded and bounded, so it is the same run each time and takes a
couple of minutes at most per database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import checks

from approvals.services import agent_create
from evaluation.models import SCOPE_EVALUATION_READ, AgentKeyGrant
from policies.selectors import policy_table_cache_clear
from policies.services import policies_load_defaults
from reviewers.services import personal_access_token_create, reviewer_create
from tests.factories import UserFactory

pytestmark = pytest.mark.slow

# Every default check but positive_data_acceptance (a schema-valid body must be accepted): our
# rules that a schema cannot express (a group that exists, a CEL condition that compiles, a
# params schema that is an object schema) rightly refuse some schema-valid bodies with a 422.
# use_after_free and ensure_resource_availability need stateful links, which the schema has none of.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.unsupported_method,
    checks.allow_header_conformance,
    checks.missing_required_header,
    checks.ignored_auth,
]
FUZZ = settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def live_schema(transactional_db: None, live_url: str) -> Iterator[schemathesis.BaseSchema]:
    policies_load_defaults()
    policy_table_cache_clear()
    yield schemathesis.openapi.from_url(f"{live_url}/api/schema/", timeout=10)


@pytest.fixture
def agent_headers(live_schema) -> dict[str, str]:
    agent, key = agent_create(name="fuzzing-bot")
    AgentKeyGrant.objects.create(key=agent.keys.get(), scopes=[SCOPE_EVALUATION_READ])
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def staff_headers(live_schema) -> dict[str, str]:
    staff = UserFactory(username="policy-admin", is_staff=True)
    staff.user_permissions.set(Permission.objects.all())
    return {"Authorization": f"Token {Token.objects.create(user=staff).key}"}


@pytest.fixture
def reviewer_headers(live_schema) -> dict[str, str]:
    _, raw = personal_access_token_create(
        user=reviewer_create(username="fuzzing-reviewer", password="pw-long-enough"), name="fuzz", lifetime_days=1
    )
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 names each operation's subtest through Node._nodeid, which pytest 9.2 dropped.
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@FUZZ
def test_the_api_keeps_its_schema_for_an_agent(case, agent_headers):
    case.call_and_validate(headers=agent_headers, checks=CHECKS, timeout=30)


@schema.parametrize()
@FUZZ
def test_the_api_keeps_its_schema_for_staff(case, staff_headers):
    case.call_and_validate(headers=staff_headers, checks=CHECKS, timeout=30)


@schema.include(path_regex="^/api/v1/review/").parametrize()
@FUZZ
def test_the_reviewer_api_keeps_its_schema_for_a_reviewer(case, reviewer_headers):
    case.call_and_validate(headers=reviewer_headers, checks=CHECKS, timeout=30)
