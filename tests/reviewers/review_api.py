"""Helpers for the reviewer API tests: a client carrying a reviewer's personal access token."""

from __future__ import annotations

import json

from rest_framework.test import APIClient

from reviewers.services import personal_access_token_create


def token_client(user, *, read_only: bool = False, lifetime_days: int = 30) -> APIClient:
    _, raw = personal_access_token_create(user=user, name="script", lifetime_days=lifetime_days, read_only=read_only)
    return bearer_client(raw)


def bearer_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def post_json(client, path: str, body: dict):
    return client.post(path, data=json.dumps(body), content_type="application/json")
