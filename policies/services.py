from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from .defaults import DEFAULT_POLICIES
from .models import Policy, PolicyVersion

SNAPSHOT_FIELDS = (
    "id",
    "action_pattern",
    "mode",
    "priority",
    "risk",
    "pending_ttl_seconds",
    "approval_ttl_seconds",
    "enabled",
    "description",
)


def policy_table_snapshot() -> list[dict[str, Any]]:
    return list(Policy.objects.order_by("id").values(*SNAPSHOT_FIELDS))


@transaction.atomic
def policy_version_record(*, actor: AbstractBaseUser | None, note: str) -> PolicyVersion:
    """Record the table as it is now as a new version.

    Invariant: every committed change to the table is followed, in the same
    transaction, by a new version; evaluation caches key on the version number,
    so no process keeps evaluating against a stale table.
    """
    # Lock the version sequence so two concurrent editors get distinct numbers.
    latest = PolicyVersion.objects.select_for_update().order_by("-number").first()
    number = (latest.number if latest else 0) + 1
    return PolicyVersion.objects.create(
        number=number,
        created_by=actor if actor is not None and actor.is_authenticated else None,
        note=note,
        snapshot=policy_table_snapshot(),
    )


@transaction.atomic
def policies_load_defaults(*, actor: AbstractBaseUser | None = None) -> int:
    """Create the standard risk map's rows that are missing; existing rows are left as edited."""
    existing = set(Policy.objects.values_list("action_pattern", flat=True))
    created = 0
    for row in DEFAULT_POLICIES:
        if row["action_pattern"] in existing:
            continue
        Policy.objects.create(**row)
        created += 1
    if created or not PolicyVersion.objects.exists():
        policy_version_record(actor=actor, note=f"Loaded the default policy table ({created} new rows).")
    return created


def policy_version_latest_number() -> int:
    return PolicyVersion.objects.aggregate(n=Max("number"))["n"] or 0
