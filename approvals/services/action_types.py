"""The params schema an agent registers for an action type (reviewers' edits must satisfy it)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from core.errors import InvalidInput, NotFound, PermissionRefused, TransitionRefused
from policies.evaluation import pattern_matches

from ..models import ActionTypeSchema, Agent
from ..params_schema import schema_problems


def _refuse_unless_schema_writable(*, agent: Agent, action_type: str, existing: ActionTypeSchema | None) -> None:
    scopes = [tuple(agent.action_scopes or ()), tuple(getattr(agent, "key_scopes", ()) or ())]
    for allowed in scopes:
        if allowed and not any(pattern_matches(pattern, action_type) for pattern in allowed):
            raise PermissionRefused(
                f"This agent key may only request {', '.join(allowed)}; {action_type!r} is outside its scope.",
                code="out_of_scope",
            )
    if existing is not None and existing.registered_by_id not in (None, agent.pk):
        raise PermissionRefused(
            f"Another agent registered the schema of {action_type!r}; only it (or an admin) may change it.",
            code="schema_owned_by_another_agent",
        )


def action_type_schema_put(*, agent: Agent, action_type: str, schema: Any) -> tuple[ActionTypeSchema, bool]:
    """Register or replace the params schema of an action type; returns (row, created).

    Invariant: a stored schema is valid draft 2020-12, describes an object and refers to
    nothing outside itself; only the agent that registered it (or an admin) replaces it.
    """
    problems = schema_problems(schema)
    if problems:
        problem = problems[0]
        raise InvalidInput(
            f"This is not a schema we can use: {problem['path'] or '(schema)'}: {problem['message']}",
            code="invalid_schema",
            details=problem,
        )
    with transaction.atomic():
        existing = ActionTypeSchema.objects.select_for_update().filter(action_type=action_type).first()
        _refuse_unless_schema_writable(agent=agent, action_type=action_type, existing=existing)
        if existing is None:
            try:
                with transaction.atomic():
                    return ActionTypeSchema.objects.create(
                        action_type=action_type, params_schema=schema, registered_by=agent
                    ), True
            except IntegrityError:
                # A concurrent first registration won; the caller may retry to replace it.
                raise TransitionRefused(
                    f"The schema of {action_type!r} was registered at the same moment; read it and retry.",
                    code="schema_conflict",
                ) from None
        existing.params_schema = schema
        existing.registered_by = agent
        existing.save(update_fields=["params_schema", "registered_by", "updated_at"])
        return existing, False


def action_type_schema_delete(*, agent: Agent, action_type: str) -> None:
    """Remove an action type's params schema: edits are then checked only for being a JSON object."""
    with transaction.atomic():
        existing = ActionTypeSchema.objects.select_for_update().filter(action_type=action_type).first()
        if existing is None:
            raise NotFound(f"No schema is registered for {action_type!r}.")
        _refuse_unless_schema_writable(agent=agent, action_type=action_type, existing=existing)
        existing.delete()
