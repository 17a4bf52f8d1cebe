"""The standard risk map, loaded by ``manage.py load_default_policies``."""

from __future__ import annotations

DEFAULT_POLICIES: list[dict[str, object]] = [
    {"action_pattern": "search_web", "mode": "auto", "description": "Read-only lookup."},
    {"action_pattern": "summarize_document", "mode": "auto", "description": "Read-only transformation."},
    {"action_pattern": "classify_ticket", "mode": "auto", "description": "Internal, reversible labelling."},
    {"action_pattern": "update_internal_record", "mode": "log", "description": "Internal change, reviewed afterwards."},
    {"action_pattern": "draft_internal_message", "mode": "log", "description": "Draft only, reviewed afterwards."},
    {
        "action_pattern": "send_external_email",
        "mode": "approve",
        "description": "Leaves the company: a human checks it.",
    },
    {"action_pattern": "update_customer_record", "mode": "approve", "description": "Customer data: a human checks it."},
    {
        "action_pattern": "execute_financial_action",
        "mode": "approve",
        "risk": "critical",
        "description": "Moves money.",
    },
    {"action_pattern": "delete_any_data", "mode": "approve", "risk": "critical", "description": "Irreversible."},
    {"action_pattern": "legal_advice", "mode": "block", "description": "Agents never give legal advice."},
    {"action_pattern": "medical_recommendation", "mode": "block", "description": "Agents never give medical advice."},
    {"action_pattern": "hiring_decision", "mode": "block", "description": "Agents never make hiring decisions."},
]
