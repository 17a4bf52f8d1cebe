from django.urls import path

from .action_types import ActionTypeSchemaView
from .agent_limits import AgentLimitsView
from .pauses import ActionTypePauseView, AgentPauseView, PauseListView
from .views import (
    ActionCancelView,
    ActionDetailView,
    ActionExecutionStartView,
    ActionExecutionView,
    ActionSubmitView,
)
from .wait import action_wait_view

urlpatterns = [
    path("actions/", ActionSubmitView.as_view(), name="actions-submit"),
    path("actions/<str:request_id>/", ActionDetailView.as_view(), name="actions-detail"),
    path("actions/<str:request_id>/wait", action_wait_view, name="actions-wait"),
    path("actions/<str:request_id>/wait/", action_wait_view),
    path("actions/<str:request_id>/cancel/", ActionCancelView.as_view(), name="actions-cancel"),
    path("actions/<str:request_id>/execution", ActionExecutionView.as_view(), name="actions-execution"),
    path(
        "actions/<str:request_id>/execution/start",
        ActionExecutionStartView.as_view(),
        name="actions-execution-start",
    ),
    path("action-types/<str:name>/schema", ActionTypeSchemaView.as_view(), name="action-type-schema"),
    # The kill switch (staff only): approvals/api/pauses.py
    path("pauses/", PauseListView.as_view(), name="pauses-list"),
    path("agents/<str:name>/pause", AgentPauseView.as_view(), name="agent-pause"),
    path("action-types/<str:name>/pause", ActionTypePauseView.as_view(), name="action-type-pause"),
    path("agents/<str:name>/limits", AgentLimitsView.as_view(), name="agent-limits"),
]
