from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from .models import (
    ActionRequest,
    ActionTypeSchema,
    Agent,
    AgentKey,
    AuditEvent,
    Decision,
    QueueNotification,
    QueueNotificationAttempt,
    ReviewerGroupNotifications,
    WebhookAttempt,
    WebhookDelivery,
)
from .notifications import queue_notification_resend
from .params_schema import schema_problems
from .webhooks import webhook_delivery_resend


class AgentKeyInline(admin.TabularInline):
    model = AgentKey
    fields = ("prefix", "action_scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # keys are issued with `manage.py create_agent` so the raw key is shown once


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "is_active", "created_at")
    search_fields = ("name",)
    inlines = [AgentKeyInline]
    exclude = ("webhook_secret",)


class AuditEventInline(admin.TabularInline):
    model = AuditEvent
    fields = ("position", "created_at", "kind", "from_status", "to_status", "actor_kind", "actor_label", "data", "hash")
    readonly_fields = fields
    ordering = ("position",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ActionRequest)
class ActionRequestAdmin(admin.ModelAdmin):
    list_display = ("action_type", "agent", "status", "mode", "risk", "created_at", "expires_at")
    list_filter = ("status", "mode", "risk")
    search_fields = ("action_type", "summary", "agent__name")
    list_select_related = ("agent",)
    inlines = [AuditEventInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ("request", "outcome", "edited", "reviewer_username", "decided_at", "seconds_to_decide")
    list_filter = ("outcome", "edited")
    list_select_related = ("request",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False


class OutboxAttemptInline(admin.TabularInline):
    """The read-only attempt log under an outbox row; a subclass names the model."""

    fields = ("attempted_at", "status_code", "latency_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False


class WebhookAttemptInline(OutboxAttemptInline):
    model = WebhookAttempt


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_type", "url", "state", "attempts", "last_status_code", "next_attempt_at", "created_at")
    list_filter = ("state", "event_type")
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.action(description="Re-send the selected deliveries")
    def resend(self, request, queryset):
        for delivery in queryset:
            webhook_delivery_resend(delivery_id=delivery.pk)
        self.message_user(request, f"{queryset.count()} deliveries queued again.", messages.SUCCESS)


class ActionTypeSchemaForm(forms.ModelForm):
    class Meta:
        model = ActionTypeSchema
        fields = ("action_type", "params_schema", "registered_by")

    def clean_params_schema(self):
        schema = self.cleaned_data["params_schema"]
        problems = schema_problems(schema)
        if problems:
            raise forms.ValidationError(f"{problems[0]['path'] or '(schema)'}: {problems[0]['message']}")
        return schema


@admin.register(ActionTypeSchema)
class ActionTypeSchemaAdmin(admin.ModelAdmin):
    form = ActionTypeSchemaForm
    list_display = ("action_type", "registered_by", "updated_at")
    search_fields = ("action_type",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(ReviewerGroupNotifications)
class ReviewerGroupNotificationsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "notify_on_new", "remind_before_seconds", "email_members", "updated_at")
    fields = ("group", "notify_on_new", "remind_before_seconds", "email_to", "email_members", "slack_webhook_url")


class QueueNotificationAttemptInline(OutboxAttemptInline):
    model = QueueNotificationAttempt


@admin.register(QueueNotification)
class QueueNotificationAdmin(admin.ModelAdmin):
    list_display = ("kind", "channel", "group", "request", "state", "attempts", "last_status_code", "created_at")
    list_filter = ("state", "kind", "channel")
    list_select_related = ("request", "group")
    inlines = [QueueNotificationAttemptInline]
    actions = ["resend"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Re-send the selected notifications")
    def resend(self, request, queryset):
        for notification in queryset:
            queue_notification_resend(notification_id=notification.pk)
        self.message_user(request, f"{queryset.count()} notifications queued again.", messages.SUCCESS)
