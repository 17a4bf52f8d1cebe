"""Every write to an action request and to what belongs to an agent, one module per stage.

Each status change follows one recipe: one transaction, the clock read once, a
conditional UPDATE whose row count says whether this caller won, then the decision
row, the audit event and the outbox rows in the same transaction (``_effects``), and
live events only after commit.

- ``submission``: the policy verdict and the request row
- ``decisions`` (with ``quorum``, ``_finalise`` and ``refusals``), ``batch``: reviewers decide
- ``cancellation``: the agent withdraws
- ``deadlines``: expiry, escalation, lapsed approvals
- ``execution``: the one run, claimed and reported
- ``containment``: rate limits, the pending cap and duplicate retries at submission
- ``agents``, ``action_types``: agents, keys, params schemas
- ``pauses``: the kill switch (pause / resume an agent or an action type)
- ``after_review``: reviewers label what ran unattended (log requests, a sample of auto)

The public names are importable from this package.
"""

from core.canonical import canonical_hash as params_hash

from ..visibility import reviewer_may_see
from .action_types import action_type_schema_delete, action_type_schema_put
from .after_review import action_request_label, after_review_sampled, after_reviews_lapse_due
from .agents import agent_create, agent_key_issue, agent_key_revoke, agent_limits_set, agent_webhook_secret_rotate
from .batch import BATCH_LIMIT, action_requests_decide_batch
from .cancellation import action_request_cancel
from .containment import agent_max_pending, agent_rate_limits, containment_count_add, rate_limit_headers
from .deadlines import action_request_settle_time, action_requests_expire_due
from .decisions import action_request_decide, action_request_decide_by_email_link, action_request_decide_by_push
from .execution import EXECUTION_OUTCOMES, action_request_report_execution, action_request_start_execution
from .pauses import PauseOutcome, action_type_pause, action_type_resume, agent_pause, agent_resume
from .submission import Submission, SubmitResult, action_request_submit

__all__ = [
    "BATCH_LIMIT",
    "EXECUTION_OUTCOMES",
    "PauseOutcome",
    "Submission",
    "SubmitResult",
    "action_request_cancel",
    "action_request_decide",
    "action_request_decide_by_email_link",
    "action_request_decide_by_push",
    "action_request_label",
    "action_request_report_execution",
    "action_request_settle_time",
    "action_request_start_execution",
    "action_request_submit",
    "action_requests_decide_batch",
    "action_requests_expire_due",
    "action_type_pause",
    "action_type_resume",
    "action_type_schema_delete",
    "action_type_schema_put",
    "after_review_sampled",
    "after_reviews_lapse_due",
    "agent_create",
    "agent_key_issue",
    "agent_key_revoke",
    "agent_limits_set",
    "agent_max_pending",
    "agent_pause",
    "agent_rate_limits",
    "agent_resume",
    "agent_webhook_secret_rotate",
    "containment_count_add",
    "params_hash",
    "rate_limit_headers",
    "reviewer_may_see",
]
