"""An action request as the gateway reports it to the agent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DECIDED = frozenset({"allowed", "blocked", "approved", "rejected", "expired", "cancelled", "executed", "lapsed"})
# Reviewers categorise a rejection by starting its reason with a slug and a colon: "pii: quotes a card number".
_CATEGORY = re.compile(r"^\s*([a-z][a-z0-9_-]{1,39})\s*:\s*(\S.*)$", re.DOTALL)


@dataclass(frozen=True)
class Action:
    id: str
    action_type: str
    status: str
    params: dict[str, Any]
    final_params: dict[str, Any] | None
    final_params_hash: str | None
    approval_token: str | None
    reason: str
    decision: dict[str, Any] | None
    expires_at: str | None
    approval_expires_at: str | None
    execution: dict[str, Any] | None
    edited: bool
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Action:
        return cls(
            id=body["id"],
            action_type=body["action_type"],
            status=body["status"],
            params=body.get("params") or {},
            final_params=body.get("final_params"),
            final_params_hash=body.get("final_params_hash"),
            approval_token=body.get("approval_token"),
            reason=body.get("reason") or "",
            decision=body.get("decision"),
            expires_at=body.get("expires_at"),
            approval_expires_at=body.get("approval_expires_at"),
            execution=body.get("execution"),
            edited=bool(body.get("edited")),
            raw=body,
        )

    @property
    def decided(self) -> bool:
        return self.status in DECIDED

    @property
    def may_run(self) -> bool:
        return self.status in {"allowed", "approved"}

    def rejection(self) -> tuple[str, str]:
        """(category, text) of a rejection; category "uncategorised" when there is none.

        Servers that record a category send ``decision.reason_category``; older ones only
        had the reviewer's "slug: text" convention, which is still parsed when the field is absent.
        """
        decision = self.decision or {}
        reason = (decision.get("reason") or "").strip()
        match = _CATEGORY.match(reason)
        if "reason_category" in decision:
            category = decision.get("reason_category") or "uncategorised"
            if match and match.group(1) == category:
                return category, match.group(2).strip()
            return category, reason
        if match:
            return match.group(1), match.group(2).strip()
        return "uncategorised", reason
