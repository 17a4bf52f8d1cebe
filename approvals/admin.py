from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from core.crypto import DecryptionError, mask
from core.errors import ServiceError

from .models import (
    ActionRequest,
    ActionTypeSchema,
    Agent,
    AgentKey,
    AuditEvent,
    Decision,
    Pause,
    QueueNotification,
    QueueNotificationAttempt,
    ReviewerGroupNotifications,
    WebhookAttempt,
    WebhookDelivery,
)
from .notifications import queue_notification_resend
from .params_schema import schema_problems
from .services import action_type_pause, action_type_resume, agent_pause, agent_resume
from .webhooks import webhook_delivery_resend


def _masked(obj, attname: str) -> str:
    """An encrypted secret as the admin shows it: recognisable, never usable (core.crypto.mask)."""
    if obj is None or obj.pk is None:
        return "-"
    try:
        return mask(getattr(obj, attname)) or "-"
    except DecryptionError as exc:
        return str(exc)


class AgentKeyInline(admin.TabularInline):
    model = AgentKey
    fields = ("prefix", "action_scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # keys are issued with `manage.py create_agent` so the raw key is shown once


def _paused_message(admin_view, request, outcome) -> None:
    admin_view.message_user(
        request,
        f"Paused {outcome.pause.kind_label} {outcome.pause.target}: {outcome.cancelled} pending request(s) "
        f"cancelled, {outcome.revoked} approval(s) revoked.",
        messages.SUCCESS,
    )


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "is_active", "paused", "created_at")
    search_fields = ("name",)
    inlines = [AgentKeyInline]
    exclude = ("webhook_secret",)
    actions = ["pause_agents", "resume_agents"]

    @admin.display(boolean=True, description="paused")
    def paused(self, obj):
        return obj.pauses.filter(resumed_at__isnull=True).exists()

    @admin.action(description="Pause the selected agents (kill switch)…", permissions=["pause"])
    def pause_agents(self, request, queryset):
        """Asks for the reason first (an intermediate page), then pauses each agent through the service."""
        error = ""
        if "apply" in request.POST:
            reason = request.POST.get("reason", "")
            try:
                for agent in queryset:
                    _paused_message(self, request, agent_pause(agent_name=agent.name, reason=reason, by=request.user))
                return None
            except ServiceError as exc:
                error = exc.message
        return TemplateResponse(
            request,
            "admin/approvals/pause_agents.html",
            {**self.admin_site.each_context(request), "agents": list(queryset), "error": error},
        )

    @admin.action(description="Resume the selected agents", permissions=["pause"])
    def resume_agents(self, request, queryset):
        for agent in queryset:
            try:
                agent_resume(agent_name=agent.name, by=request.user)
                self.message_user(request, f"Resumed agent {agent.name}.", messages.SUCCESS)
            except ServiceError as exc:
                self.message_user(request, f"{agent.name}: {exc.message}", messages.WARNING)

    def has_pause_permission(self, request):
        return request.user.has_perm("approvals.change_pause")

    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "owner",
                    "is_active",
                    "default_callback_url",
                    "tags",
                    "action_scopes",
                    "masked_webhook_secret",
                )
            },
        ),
        (
            "Containment (empty: the server's COUNTERSIGN_ defaults)",
            {"fields": ("rate_limit_per_minute", "key_rate_limit_per_minute", "max_pending")},
        ),
    )

    readonly_fields = ("masked_webhook_secret",)

    @admin.display(description="webhook secret")
    def masked_webhook_secret(self, agent):
        return _masked(agent, "webhook_secret") + " (rotate with `manage.py rotate_webhook_secret`)"


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


class ReviewerGroupNotificationsForm(forms.ModelForm):
    """The Slack app's token and signing secret are write-only here: shown masked, kept when left blank."""

    SECRETS = ("slack_bot_token", "slack_signing_secret")

    class Meta:
        model = ReviewerGroupNotifications
        fields = (
            "group",
            "notify_on_new",
            "remind_before_seconds",
            "email_to",
            "email_members",
            "slack_webhook_url",
            "slack_channel",
            "slack_bot_token",
            "slack_signing_secret",
        )
        widgets = {
            name: forms.PasswordInput(render_value=False) for name in ("slack_bot_token", "slack_signing_secret")
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.SECRETS:
            stored = _masked(self.instance, name) if self.instance.pk else "-"
            self.fields[
                name
            ].help_text += f" Now: {stored}. Leave blank to keep it; clear the channel to remove the app."

    def clean(self):
        cleaned = super().clean()
        for name in self.SECRETS:
            if not self.cleaned_data.get(name) and self.instance.pk and cleaned.get("slack_channel"):
                kept = getattr(ReviewerGroupNotifications.objects.get(pk=self.instance.pk), name)
                cleaned[name] = kept
                setattr(self.instance, name, kept)
        if not cleaned.get("slack_channel"):
            for name in self.SECRETS:
                cleaned[name] = ""
                setattr(self.instance, name, "")
        return cleaned


@admin.register(ReviewerGroupNotifications)
class ReviewerGroupNotificationsAdmin(admin.ModelAdmin):
    form = ReviewerGroupNotificationsForm
    list_display = ("__str__", "notify_on_new", "remind_before_seconds", "email_members", "updated_at")
    fields = ReviewerGroupNotificationsForm.Meta.fields


class QueueNotificationAttemptInline(OutboxAttemptInline):
    model = QueueNotificationAttempt


@admin.register(QueueNotification)
class QueueNotificationAdmin(admin.ModelAdmin):
    list_display = ("kind", "channel", "group", "request", "state", "attempts", "last_status_code", "created_at")
    list_filter = ("state", "kind", "channel")
    list_select_related = ("request", "group")
    inlines = [QueueNotificationAttemptInline]
    actions = ["resend"]
    exclude = ("target",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name if f.name != "target" else "masked_target" for f in self.model._meta.fields]

    @admin.display(description="target")
    def masked_target(self, notification):
        # Addresses are shown (an admin needs them to follow a delivery); a Slack URL is a credential.
        if notification.channel == QueueNotification.Channel.SLACK:
            return _masked(notification, "target")
        try:
            return notification.target
        except DecryptionError as exc:
            return str(exc)

    def has_add_permission(self, request):
        return False

    @admin.action(description="Re-send the selected notifications")
    def resend(self, request, queryset):
        for notification in queryset:
            queue_notification_resend(notification_id=notification.pk)
        self.message_user(request, f"{queryset.count()} notifications queued again.", messages.SUCCESS)


class PauseAdminForm(forms.ModelForm):
    class Meta:
        model = Pause
        fields = ("agent", "action_type", "reason")
        help_texts = {
            "agent": "Pause this agent, or leave empty and name an action type below.",
            "action_type": "Pause this action type for every agent (exact name, no globs).",
        }

    def clean(self):
        data = super().clean()
        if bool(data.get("agent")) == bool(data.get("action_type")):
            raise forms.ValidationError("Choose an agent or name an action type (one of the two).")
        return data


@admin.register(Pause)
class PauseAdmin(admin.ModelAdmin):
    """The kill switch's page: the pauses in force and past, pausing (Add) and resuming (the action)."""

    form = PauseAdminForm
    list_display = ("kind_label", "target", "reason", "paused_by_label", "paused_at", "resumed_by_label", "resumed_at")
    list_filter = (("resumed_at", admin.EmptyFieldListFilter), "action_type")
    list_select_related = ("agent",)
    search_fields = ("agent__name", "action_type", "reason")
    actions = ["resume_pauses"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return [f.name for f in self.model._meta.fields]

    def has_delete_permission(self, request, obj=None):
        return False  # the rows are the record of who paused what and why

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            if obj.agent_id:
                outcome = agent_pause(agent_name=obj.agent.name, reason=obj.reason, by=request.user)
            else:
                outcome = action_type_pause(action_type=obj.action_type, reason=obj.reason, by=request.user)
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None
        obj.pk = outcome.pause.pk
        obj.paused_at = outcome.pause.paused_at
        _paused_message(self, request, outcome)

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except forms.ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @admin.action(description="Resume the selected pauses", permissions=["change"])
    def resume_pauses(self, request, queryset):
        for pause in queryset.filter(resumed_at__isnull=True).select_related("agent"):
            try:
                if pause.agent_id:
                    agent_resume(agent_name=pause.agent.name, by=request.user)
                else:
                    action_type_resume(action_type=pause.action_type, by=request.user)
                self.message_user(request, f"Resumed {pause.kind_label} {pause.target}.", messages.SUCCESS)
            except ServiceError as exc:
                self.message_user(request, f"{pause.target}: {exc.message}", messages.WARNING)
