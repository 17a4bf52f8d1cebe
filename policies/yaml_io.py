"""The policy table as YAML: the format of export_policies, import_policies and the simulate page."""

from __future__ import annotations

from typing import Any

import yaml

from core.errors import InvalidInput

from .selectors import policy_table_version_current
from .services import ROW_FIELDS, policy_table_snapshot


def policies_to_yaml(rows: list[dict[str, Any]] | None = None, *, version: int | None = None) -> str:
    rows = policy_table_snapshot() if rows is None else rows
    ordered = [{k: row[k] for k in ("id", *ROW_FIELDS) if k in row} for row in rows]
    document = {
        "version": policy_table_version_current() if version is None else version,
        "policies": ordered,
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def policies_from_yaml(text: str) -> list[dict[str, Any]]:
    """Parse (not validate) a YAML table; validation is the services' job."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"The file is not valid YAML: {exc}", code="invalid_yaml") from None
    if isinstance(document, list):
        rows = document
    elif isinstance(document, dict) and isinstance(document.get("policies"), list):
        rows = document["policies"]
    else:
        raise InvalidInput(
            "Expected a mapping with a 'policies' list (as export_policies writes).", code="invalid_yaml"
        )
    if not all(isinstance(row, dict) for row in rows):
        raise InvalidInput("Every entry under 'policies' must be a mapping.", code="invalid_yaml")
    return rows
