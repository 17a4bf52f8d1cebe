"""Ask a human before your agent acts: the Countersign client.

gate = Countersign("https://countersign.example", api_key="cs_...")

@gate.require_approval("send_external_email")
def send_email(to: str, subject: str, body: str) -> dict: ...
"""

from ._async import AsyncCountersign
from ._common import idempotency_key_for, llm_message
from ._sync import Approval, Countersign
from .action import Action
from .errors import (
    ActionNotPermitted,
    AlreadyExecuted,
    APIError,
    Blocked,
    Cancelled,
    CountersignError,
    Expired,
    RateLimited,
    Rejected,
)

__all__ = [
    "APIError",
    "Action",
    "ActionNotPermitted",
    "AlreadyExecuted",
    "Approval",
    "AsyncCountersign",
    "Blocked",
    "Cancelled",
    "Countersign",
    "CountersignError",
    "Expired",
    "RateLimited",
    "Rejected",
    "idempotency_key_for",
    "llm_message",
]
