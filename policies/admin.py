from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from core.errors import ServiceError

from .models import Policy, PolicyDraft, PolicyVersion
from .services import policy_draft_publish, policy_version_record, policy_version_rollback


class PolicyAdminForm(forms.ModelForm):
    """The model's own validation (the CEL compiler included) plus the change note every edit needs."""

    change_note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why this change? Kept in the policy history with your name and the diff.",
    )
    sample_rate = forms.FloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        initial=0.0,
        help_text=Policy._meta.get_field("sample_rate").help_text + " Empty: 0.",
    )

    def clean_sample_rate(self) -> float:
        return self.cleaned_data.get("sample_rate") or 0.0

    class Meta:
        model = Policy
        fields = (
            "action_pattern",
            "mode",
            "condition",
            "priority",
            "enabled",
            "description",
            "risk",
            "required_approvals",
            "reviewer_group",
            "pending_ttl_seconds",
            "approval_ttl_seconds",
            "on_expiry",
            "escalation_group",
            "collapse_duplicates",
            "sample_rate",
        )
        # The model's help text predates the rule; changing it there would need a migration.
        help_texts = {
            "escalation_group": "Where an expiring request escalates to (once). Required when on expiry is "
            "escalate; the group must hold the review permission (manage.py create_reviewer USERNAME --group NAME).",
        }


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    form = PolicyAdminForm
    list_display = (
        "action_pattern",
        "mode",
        "condition",
        "priority",
        "required_approvals",
        "reviewer_group",
        "effective_risk",
        "pending_ttl_seconds",
        "approval_ttl_seconds",
        "on_expiry",
        "enabled",
    )
    list_filter = ("mode", "enabled", "on_expiry")
    search_fields = ("action_pattern", "description", "condition")
    ordering = ("-priority", "action_pattern")
    fieldsets = (
        (None, {"fields": ("action_pattern", "mode", "condition", "priority", "enabled", "description", "risk")}),
        ("Who decides", {"fields": ("required_approvals", "reviewer_group")}),
        ("Time", {"fields": ("pending_ttl_seconds", "approval_ttl_seconds", "on_expiry", "escalation_group")}),
        ("Retries", {"fields": ("collapse_duplicates",)}),
        ("Review afterwards", {"fields": ("sample_rate",)}),
        ("Why", {"fields": ("change_note",)}),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        policy_version_record(actor=request.user, note=form.cleaned_data["change_note"])

    def delete_model(self, request, obj):
        pattern = obj.action_pattern
        super().delete_model(request, obj)
        policy_version_record(actor=request.user, note=f"Deleted policy '{pattern}' in the admin.")

    def delete_queryset(self, request, queryset):
        patterns = ", ".join(queryset.values_list("action_pattern", flat=True))
        super().delete_queryset(request, queryset)
        policy_version_record(actor=request.user, note=f"Deleted policies {patterns} in the admin.")


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    list_display = ("number", "created_at", "created_by", "note", "change_summary")
    readonly_fields = ("number", "created_at", "created_by", "note", "diff", "snapshot")
    actions = ("roll_back_to_this_version",)

    @admin.display(description="changes")
    def change_summary(self, obj: PolicyVersion) -> str:
        diff = obj.diff or {}
        return (
            f"+{len(diff.get('added', []))} -{len(diff.get('removed', []))} ~{len(diff.get('changed', []))}"
            if diff
            else ""
        )

    @admin.action(description="Roll the table back to the selected version", permissions=["rollback"])
    def roll_back_to_this_version(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to roll back to.", messages.ERROR)
            return
        target = queryset.get()
        try:
            version = policy_version_rollback(actor=request.user, number=target.number)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"Rolled back to version {target.number}; recorded as version {version.number}.")

    def has_rollback_permission(self, request):
        return request.user.has_perm("policies.change_policy")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PolicyDraft)
class PolicyDraftAdmin(admin.ModelAdmin):
    """Drafts are written on the simulate page (/policies/simulate/) or through the API; publish them here."""

    list_display = ("name", "created_by", "updated_at", "based_on_version", "published_version")
    readonly_fields = ("name", "rows", "note", "created_by", "based_on_version", "published_version")
    actions = ("publish_draft",)

    @admin.action(
        description="Publish the selected draft (replaces the table in one transaction)", permissions=["publish"]
    )
    def publish_draft(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one draft to publish.", messages.ERROR)
            return
        draft = queryset.get()
        try:
            version = policy_draft_publish(actor=request.user, draft_id=draft.pk)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"Published '{draft.name}' as version {version.number}.")

    def has_publish_permission(self, request):
        return request.user.has_perm("policies.change_policy")

    def has_add_permission(self, request):
        return False
