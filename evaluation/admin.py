from __future__ import annotations

from django.contrib import admin, messages

from approvals.admin import OutboxAttemptInline

from .models import AgentKeyGrant, AlertNotification, AlertNotificationAttempt, DriftAlert, KnownActionType
from .notifications import alert_notification_resend


@admin.register(AgentKeyGrant)
class AgentKeyGrantAdmin(admin.ModelAdmin):
    list_display = ("key", "scopes", "created_at")


class AlertNotificationInline(admin.TabularInline):
    model = AlertNotification
    fields = ("event_type", "channel", "state", "attempts", "created_at", "delivered_at", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(DriftAlert)
class DriftAlertAdmin(admin.ModelAdmin):
    list_display = ("summary", "kind", "status", "times_seen", "last_seen_at")
    list_filter = ("kind", "status")
    readonly_fields = ("pattern_key", "decision_ids", "details", "notified_value")
    inlines = [AlertNotificationInline]


class AlertNotificationAttemptInline(OutboxAttemptInline):
    model = AlertNotificationAttempt


@admin.register(AlertNotification)
class AlertNotificationAdmin(admin.ModelAdmin):
    """Read-only: the outbox is written by drift detection and the delivery task; admins may re-send."""

    list_display = (
        "alert",
        "event_type",
        "channel",
        "state",
        "attempts",
        "last_status_code",
        "created_at",
        "delivered_at",
    )
    list_filter = ("state", "channel", "event_type")
    readonly_fields = [f.name for f in AlertNotification._meta.fields]
    inlines = [AlertNotificationAttemptInline]
    actions = ["resend"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Re-send the selected notifications")
    def resend(self, request, queryset):
        for notification in queryset:
            alert_notification_resend(notification_id=notification.pk)
        self.message_user(request, f"{queryset.count()} notifications queued again.", messages.SUCCESS)


admin.site.register(KnownActionType)
