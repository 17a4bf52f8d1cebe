"""Every write to the policy table. Each one records a new PolicyVersion in the same transaction.

Rows travel as plain dicts (the admin API, drafts, YAML, version snapshots all use
the same shape: ``ROW_FIELDS``, groups by name), and every path validates them
with the model's own validation, so the admin form, the API and an import refuse
exactly the same things, with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction

from core.errors import InvalidInput, NotFound, TransitionRefused

from .defaults import DEFAULT_POLICIES
from .models import Policy, PolicyDraft, PolicyVersion
from .selectors import policy_table_version_current

ROW_FIELDS = (
    "action_pattern",
    "mode",
    "condition",
    "priority",
    "enabled",
    "required_approvals",
    "reviewer_group",
    "pending_ttl_seconds",
    "approval_ttl_seconds",
    "on_expiry",
    "escalation_group",
    "risk",
    "description",
    "collapse_duplicates",
    "sample_rate",
)
GROUP_FIELDS = ("reviewer_group", "escalation_group")
SNAPSHOT_FIELDS = ("id", *ROW_FIELDS)
# A 422 carries one of these codes (instead of validation_error) when every problem has it.
SPECIFIC_CODES = ("invalid_condition", "unknown_group", "escalation_group_required", "group_cannot_review")


class PolicyInvalid(InvalidInput):
    """One or more rows fail validation. ``code`` is ``invalid_condition`` when only conditions are at fault."""


def policy_as_row(policy: Policy) -> dict[str, Any]:
    row: dict[str, Any] = {"id": policy.id}
    for name in ROW_FIELDS:
        if name in GROUP_FIELDS:
            group = getattr(policy, name)
            row[name] = group.name if group is not None else None
        else:
            row[name] = getattr(policy, name)
    return row


def policy_table_snapshot() -> list[dict[str, Any]]:
    policies = Policy.objects.select_related("reviewer_group", "escalation_group").order_by("id")
    return [policy_as_row(p) for p in policies]


def _snapshot_key(row: dict[str, Any]) -> Any:
    return row.get("id")


def snapshot_diff(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows added, removed and changed (field by field), keyed on the policy id."""
    old = {_snapshot_key(r): r for r in before}
    new = {_snapshot_key(r): r for r in after}
    changed = []
    for key in sorted(set(old) & set(new), key=str):
        fields = {
            name: {"from": old[key].get(name), "to": new[key].get(name)}
            for name in ROW_FIELDS
            if old[key].get(name) != new[key].get(name)
        }
        if fields:
            changed.append({"id": key, "action_pattern": new[key].get("action_pattern"), "fields": fields})
    return {
        "added": [new[k] for k in sorted(set(new) - set(old), key=str)],
        "removed": [old[k] for k in sorted(set(old) - set(new), key=str)],
        "changed": changed,
    }


def _require_note(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise InvalidInput(
            "Every change to the policy table needs a change note saying why.", code="change_note_required"
        )
    return note


@transaction.atomic
def policy_version_record(*, actor: AbstractBaseUser | None, note: str) -> PolicyVersion:
    """Record the table as it is now as a new version, with its diff against the previous one.

    Invariant: every committed change to the table is followed, in the same
    transaction, by a new version; evaluation caches key on the version number,
    so no process keeps evaluating against a stale table.
    """
    note = _require_note(note)
    # Lock the version sequence so two concurrent editors get distinct numbers.
    latest = PolicyVersion.objects.select_for_update().order_by("-number").first()
    number = (latest.number if latest else 0) + 1
    snapshot = policy_table_snapshot()
    return PolicyVersion.objects.create(
        number=number,
        created_by=actor if actor is not None and actor.is_authenticated else None,
        note=note,
        snapshot=snapshot,
        diff=snapshot_diff(latest.snapshot if latest else [], snapshot),
    )


def _groups_by_name(names: set[str]) -> dict[str, Group]:
    return {g.name: g for g in Group.objects.filter(name__in=names)}


def _unknown_group(value: Any) -> ValidationError:
    if not isinstance(value, str):
        return ValidationError("A group is given by its name (a string).", code="invalid")
    return ValidationError(
        f"No group named {value!r}. Create it, with the review permission, by adding a reviewer to it: "
        f"manage.py create_reviewer USERNAME --group {value}",
        code="unknown_group",
    )


def _policy_from_row(row: dict[str, Any], *, instance: Policy | None, groups: dict[str, Group]) -> Policy:
    """Apply a row to a (new or existing) unsaved instance and run the model's validation on it.

    Raises a ValidationError whose ``error_dict`` keeps each problem's code.
    """
    unknown = sorted(set(row) - set(ROW_FIELDS) - {"id"})
    errors: dict[str, list[ValidationError]] = {
        name: [ValidationError("Unknown field.", code="unknown_field")] for name in unknown
    }
    policy = instance if instance is not None else Policy()
    for name in ROW_FIELDS:
        if name not in row:
            continue
        value = row[name]
        if name in GROUP_FIELDS:
            if value in (None, ""):
                setattr(policy, name, None)
            elif isinstance(value, str) and value in groups:
                setattr(policy, name, groups[value])
            else:
                errors.setdefault(name, []).append(_unknown_group(value))
        elif name in ("condition", "description", "risk") and value is None:
            setattr(policy, name, "")
        else:
            setattr(policy, name, value)
    try:
        policy.full_clean(exclude=[*errors])
    except ValidationError as exc:
        for name, field_errors in exc.error_dict.items():
            # An unknown group already explains its field; "escalation_group_required" on top would mislead.
            if name not in errors:
                errors[name] = field_errors
    if errors:
        raise ValidationError(errors)
    return policy


def policy_rows_validate(rows: list[dict[str, Any]]) -> list[Policy]:
    """Validate every row before anything is written; raise PolicyInvalid listing every problem."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise PolicyInvalid("The table must be a list of policy rows (objects).", code="validation_error")
    names = {r.get(g) for r in rows for g in GROUP_FIELDS if isinstance(r.get(g), str)}
    groups = _groups_by_name(names)
    problems: dict[str, list[ValidationError]] = {}
    policies = []
    for index, row in enumerate(rows):
        try:
            policies.append(_policy_from_row(row, instance=None, groups=groups))
        except ValidationError as exc:
            problems.update({f"rows[{index}].{name}": errs for name, errs in exc.error_dict.items()})
    if problems:
        raise _invalid(problems)
    return policies


def _invalid(problems: dict[str, list[ValidationError]]) -> PolicyInvalid:
    """One 422 for every problem: ``details.fields`` has the messages, ``details.codes`` the codes."""
    flat = {key: [m for e in errs for m in e.messages] for key, errs in problems.items()}
    codes = {key: [e.code or "invalid" for e in errs] for key, errs in problems.items()}
    distinct = {c for field_codes in codes.values() for c in field_codes}
    code = distinct.pop() if len(distinct) == 1 else "validation_error"
    if code not in SPECIFIC_CODES:
        code = "validation_error"
    first = next(iter(flat.values()))[0]
    if code == "invalid_condition":
        message = f"The condition does not compile: {first}"
    elif code != "validation_error" and len(flat) == 1:
        message = first
    else:
        message = f"Fix these fields: {', '.join(sorted(flat))}."
    return PolicyInvalid(message, code=code, details={"fields": flat, "codes": codes})


def _policy_save_row(
    *, actor: AbstractBaseUser | None, data: dict[str, Any], instance: Policy | None, change_note: str
) -> Policy:
    groups = _groups_by_name({data[g] for g in GROUP_FIELDS if isinstance(data.get(g), str)})
    try:
        policy = _policy_from_row(data, instance=instance, groups=groups)
    except ValidationError as exc:
        raise _invalid(exc.error_dict) from None
    policy.save()
    policy_version_record(actor=actor, note=change_note)
    return policy


@transaction.atomic
def policy_create(*, actor: AbstractBaseUser | None, data: dict[str, Any], change_note: str) -> Policy:
    """Add one row. Invariant: validated like the admin form; a new version is recorded with the note."""
    change_note = _require_note(change_note)
    return _policy_save_row(actor=actor, data=data, instance=None, change_note=change_note)


@transaction.atomic
def policy_update(*, actor: AbstractBaseUser | None, policy_id: int, data: dict[str, Any], change_note: str) -> Policy:
    """Change some fields of one row (a partial update). Same validation and versioning as create."""
    change_note = _require_note(change_note)
    policy = _policy_get_for_update(policy_id)
    return _policy_save_row(actor=actor, data=data, instance=policy, change_note=change_note)


@transaction.atomic
def policy_delete(*, actor: AbstractBaseUser | None, policy_id: int, change_note: str) -> None:
    change_note = _require_note(change_note)
    _policy_get_for_update(policy_id).delete()
    policy_version_record(actor=actor, note=change_note)


def _policy_get_for_update(policy_id: Any) -> Policy:
    try:
        return Policy.objects.select_for_update().get(pk=policy_id)
    except (Policy.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No policy {policy_id}.") from None


def _natural_key(policy: Policy) -> tuple[str, int, str]:
    return (policy.action_pattern, policy.priority, (policy.condition or "").strip())


@dataclass(frozen=True)
class PolicyRowChange:
    """What importing or publishing a table would do to one policy."""

    action: Literal["create", "update", "unchanged", "delete"]
    action_pattern: str
    policy_id: int | None = None
    row_index: int | None = None
    matched_by: Literal["id", "natural_key", ""] = ""
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f"row {self.row_index}" if self.row_index is not None else "not in the file"
        target = f"policy {self.policy_id}" if self.policy_id is not None else "a new policy"
        line = f"{self.action:<9} {target} ({self.action_pattern}), {where}"
        if self.matched_by:
            line += f", matched by {self.matched_by.replace('_', ' ')}"
        if self.fields:
            line += f": {', '.join(self.fields)}"
        return line


def _policy_table_match(
    rows: list[dict[str, Any]], validated: list[Policy], existing: dict[int, Policy]
) -> list[tuple[int | None, str]]:
    """For each row, the existing policy it becomes (or None) and how it was matched.

    An ``id`` naming an existing policy wins. A row without one (or with an id this
    database does not have, e.g. a file exported elsewhere) takes the lowest-id
    unmatched policy with the same natural key: action_pattern, priority, condition.
    """
    matches: list[tuple[int | None, str]] = [(None, "")] * len(rows)
    taken: set[int] = set()
    for index, row in enumerate(rows):
        row_id = row.get("id")
        if isinstance(row_id, int) and not isinstance(row_id, bool) and row_id in existing and row_id not in taken:
            matches[index] = (row_id, "id")
            taken.add(row_id)
    by_key: dict[tuple[str, int, str], list[int]] = {}
    for policy_id in sorted(existing):
        if policy_id not in taken:
            by_key.setdefault(_natural_key(existing[policy_id]), []).append(policy_id)
    for index, fresh in enumerate(validated):
        if matches[index][0] is None and (candidates := by_key.get(_natural_key(fresh))):
            matches[index] = (candidates.pop(0), "natural_key")
    return matches


def policy_table_plan(*, rows: list[dict[str, Any]]) -> list[PolicyRowChange]:
    """What ``policy_table_replace(rows=rows)`` would do, row by row, without writing. Validates first."""
    validated = policy_rows_validate([{k: v for k, v in r.items() if k != "id"} for r in rows])
    existing = {p.id: p for p in Policy.objects.select_related("reviewer_group", "escalation_group")}
    return _policy_table_changes(rows, validated, existing)


def _policy_table_changes(
    rows: list[dict[str, Any]], validated: list[Policy], existing: dict[int, Policy]
) -> list[PolicyRowChange]:
    changes = []
    matched: set[int] = set()
    for index, (fresh, (policy_id, how)) in enumerate(
        zip(validated, _policy_table_match(rows, validated, existing), strict=True)
    ):
        if policy_id is None:
            changes.append(PolicyRowChange("create", fresh.action_pattern, row_index=index))
            continue
        matched.add(policy_id)
        before, after = policy_as_row(existing[policy_id]), policy_as_row(fresh)
        fields = tuple(name for name in ROW_FIELDS if before[name] != after[name])
        action = "update" if fields else "unchanged"
        changes.append(PolicyRowChange(action, fresh.action_pattern, policy_id, index, how, fields))  # type: ignore[arg-type]
    for policy_id in sorted(set(existing) - matched):
        changes.append(PolicyRowChange("delete", existing[policy_id].action_pattern, policy_id))
    return changes


@transaction.atomic
def policy_table_replace(*, actor: AbstractBaseUser | None, rows: list[dict[str, Any]], note: str) -> PolicyVersion:
    """Make the table exactly ``rows``, atomically, and record one version.

    Each row updates the existing policy it matches (by ``id``, else by natural key:
    see ``_policy_table_match``), so request history keeps pointing at the same row;
    other rows are created; existing policies nothing matched are deleted. Everything
    is validated before anything is written. Used by publish, rollback and import.
    """
    note = _require_note(note)
    validated = policy_rows_validate([{k: v for k, v in r.items() if k != "id"} for r in rows])
    existing = {p.id: p for p in Policy.objects.select_for_update()}
    keep: set[int] = set()
    for fresh, (policy_id, _how) in zip(validated, _policy_table_match(rows, validated, existing), strict=True):
        if policy_id is not None:
            fresh.id = policy_id
            fresh.created_at = existing[policy_id].created_at
            keep.add(policy_id)
        fresh.save()
    Policy.objects.filter(id__in=set(existing) - keep).delete()
    return policy_version_record(actor=actor, note=note)


def policy_version_get(*, number: int) -> PolicyVersion:
    try:
        return PolicyVersion.objects.get(number=number)
    except (PolicyVersion.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No policy table version {number}.") from None


def policy_version_rollback(*, actor: AbstractBaseUser | None, number: int, note: str = "") -> PolicyVersion:
    """Make the table what it was at version ``number``. History is kept: this records a new version."""
    target = policy_version_get(number=number)
    note = (note or "").strip() or f"Rolled back to version {number}."
    return policy_table_replace(actor=actor, rows=target.snapshot, note=note)


def policy_draft_save(
    *,
    actor: AbstractBaseUser | None,
    name: str,
    rows: list[dict[str, Any]],
    note: str = "",
    draft_id: int | None = None,
) -> PolicyDraft:
    """Save a proposed table. It is validated now, so a draft that saves is a draft that can publish."""
    policy_rows_validate([{k: v for k, v in r.items() if k != "id"} for r in rows])
    if draft_id is None:
        return PolicyDraft.objects.create(
            name=name,
            rows=rows,
            note=note,
            created_by=actor if actor is not None and actor.is_authenticated else None,
            based_on_version=policy_table_version_current(),
        )
    draft = policy_draft_get(draft_id=draft_id)
    draft.name, draft.rows, draft.note = name, rows, note
    draft.save()
    return draft


def policy_draft_get(*, draft_id: Any) -> PolicyDraft:
    try:
        return PolicyDraft.objects.get(pk=draft_id)
    except (PolicyDraft.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No policy draft {draft_id}.") from None


@transaction.atomic
def policy_draft_publish(*, actor: AbstractBaseUser | None, draft_id: Any, note: str = "") -> PolicyVersion:
    """Publish a draft: the whole table changes in one transaction, or not at all."""
    draft = PolicyDraft.objects.select_for_update().filter(pk=draft_id).first()
    if draft is None:
        raise NotFound(f"No policy draft {draft_id}.")
    if draft.published_version is not None:
        raise TransitionRefused(
            f"This draft was already published as version {draft.published_version}; save a new draft.",
            code="already_published",
        )
    version = policy_table_replace(
        actor=actor, rows=draft.rows, note=(note or draft.note or f"Published draft '{draft.name}'.")
    )
    draft.published_version = version.number
    draft.save(update_fields=["published_version", "updated_at"])
    return version


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
