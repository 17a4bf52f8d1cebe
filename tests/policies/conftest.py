"""Fixtures for the policies tests."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def staff_api(admin_user):
    """The policies API as a logged-in staff user (session auth)."""
    client = APIClient()
    client.force_login(admin_user)
    return client
