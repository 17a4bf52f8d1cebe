"""The approvals app's models, one module per part of the domain; every name is importable from here."""

from .after_review import (
    AfterReviewLabel,
)
from .agents import (
    ACTION_TYPE_REGEX,
    API_KEY_PREFIX,
    REVIEWER_TOKEN_PREFIX,
    Agent,
    AgentKey,
    generate_webhook_secret,
    hash_api_key,
)
from .containment import (
    ContainmentCount,
    ContainmentKind,
    Pause,
)
from .notifications import (
    PushSubscription,
    QueueNotification,
    QueueNotificationAttempt,
    ReviewerGroupNotifications,
    SlackMessage,
    WebhookAttempt,
    WebhookDelivery,
)
from .requests import (
    PAUSED_ACTION_TYPE,
    PAUSED_AGENT,
    PAUSED_VERDICT,
    ActionRequest,
    ActionTypeSchema,
    AfterReview,
    AfterReviewLabelKind,
    AuditEvent,
    Decision,
    DecisionOutcome,
    Status,
    Surface,
    Vote,
)

__all__ = [
    "ACTION_TYPE_REGEX",
    "API_KEY_PREFIX",
    "PAUSED_ACTION_TYPE",
    "PAUSED_AGENT",
    "PAUSED_VERDICT",
    "REVIEWER_TOKEN_PREFIX",
    "ActionRequest",
    "ActionTypeSchema",
    "AfterReview",
    "AfterReviewLabel",
    "AfterReviewLabelKind",
    "Agent",
    "AgentKey",
    "AuditEvent",
    "ContainmentCount",
    "ContainmentKind",
    "Decision",
    "DecisionOutcome",
    "Pause",
    "PushSubscription",
    "QueueNotification",
    "QueueNotificationAttempt",
    "ReviewerGroupNotifications",
    "SlackMessage",
    "Status",
    "Surface",
    "Vote",
    "WebhookAttempt",
    "WebhookDelivery",
    "generate_webhook_secret",
    "hash_api_key",
]
