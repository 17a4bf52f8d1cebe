"""Each example runs as its own process against the live gateway (``live_url``), as a user would run it."""

from __future__ import annotations

import pytest

from approvals.services import agent_create
from policies.selectors import policy_table_cache_clear
from policies.services import policies_load_defaults


@pytest.fixture
def example_agent(transactional_db, live_url):
    policies_load_defaults()
    policy_table_cache_clear()
    _, key = agent_create(name="example-bot")
    return key
