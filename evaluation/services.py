"""Writes owned by evaluation: key scopes and drift alert acknowledgement (detection is in drift.py)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from approvals.models import AgentKey
from core.errors import InvalidInput, NotFound

from .models import KNOWN_SCOPES, AgentKeyGrant, AlertStatus, DriftAlert


@transaction.atomic
def agent_key_scope_grant(*, key: AgentKey, scope: str) -> AgentKeyGrant:
    """Give a key a scope. Invariant: only known scopes are stored, each once."""
    if scope not in KNOWN_SCOPES:
        raise InvalidInput(f"Unknown scope {scope!r}; known scopes: {', '.join(KNOWN_SCOPES)}.")
    grant, _ = AgentKeyGrant.objects.select_for_update().get_or_create(key=key)
    if scope not in grant.scopes:
        grant.scopes = [*grant.scopes, scope]
        grant.save(update_fields=["scopes"])
    return grant


def agent_key_scope_revoke(*, key: AgentKey, scope: str) -> None:
    grant = AgentKeyGrant.objects.filter(key=key).first()
    if grant and scope in grant.scopes:
        grant.scopes = [s for s in grant.scopes if s != scope]
        grant.save(update_fields=["scopes"])


def drift_alert_acknowledge(*, alert_id: int, user: AbstractBaseUser) -> DriftAlert:
    """A person has seen the alert. Invariant: only an open alert moves to acknowledged (compare-and-swap)."""
    now = timezone.now()
    changed = DriftAlert.objects.filter(pk=alert_id, status=AlertStatus.OPEN).update(
        status=AlertStatus.ACKNOWLEDGED, acknowledged_by=user, acknowledged_at=now
    )
    try:
        alert = DriftAlert.objects.get(pk=alert_id)
    except DriftAlert.DoesNotExist:
        raise NotFound(f"No drift alert {alert_id}.") from None
    del changed  # acknowledging twice is harmless: the first person and time are kept
    return alert
