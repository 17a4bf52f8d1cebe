"""No index that another one already serves: every index is written on every insert.

A submission inserts a request row and its first audit event; each index on those tables is
one more entry written in its transaction. An index whose columns begin another index (a
foreign key's own index, say, beside a composite that starts with it) costs that write and
serves no query the other cannot.
"""

from __future__ import annotations

from django.apps import apps
from django.db import models

OUR_APPS = ("approvals", "reviewers", "policies", "evaluation", "core")


def _field_indexes(model: type[models.Model]) -> dict[str, str]:
    """Field name -> column, for each field with an index of its own (a foreign key's, ``db_index=True``)."""
    return {
        field.name: field.column
        for field in model._meta.local_concrete_fields
        if field.db_index and not field.unique and not field.primary_key
    }


def _composite_indexes(model: type[models.Model]) -> dict[str, tuple[str, ...]]:
    """Index or unique constraint name -> its columns, for those over every row (no condition)."""
    meta = model._meta
    found = {
        index.name: tuple(meta.get_field(name.lstrip("-")).column for name in index.fields)
        for index in meta.indexes
        if index.condition is None and index.fields
    }
    for constraint in meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.condition is None and constraint.fields:
            found[constraint.name] = tuple(meta.get_field(name).column for name in constraint.fields)
    return found


def test_no_field_has_an_index_of_its_own_that_a_composite_index_already_serves():
    redundant = []
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS or not model._meta.managed:
            continue
        composites = _composite_indexes(model)
        for field, column in _field_indexes(model).items():
            redundant += [
                f"{model.__name__}.{field}: {name} {columns} begins with it"
                for name, columns in composites.items()
                if columns[0] == column
            ]
    assert not redundant, "give these fields db_index=False:\n" + "\n".join(redundant)
