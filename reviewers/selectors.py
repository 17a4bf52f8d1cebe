"""Read paths of the reviewer UI."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from approvals.representation import isoformat

from .models import Claim


def claims_active(request_ids: Iterable[Any]) -> dict[str, dict[str, str]]:
    """Who is reviewing which of these requests right now: ``{id: {"by", "expires_at"}}``, one query."""
    claims = Claim.objects.filter(request_id__in=list(request_ids), expires_at__gt=timezone.now()).select_related(
        "user"
    )
    return {
        str(claim.request_id): {"by": claim.user.get_username(), "expires_at": isoformat(claim.expires_at)}
        for claim in claims
    }
