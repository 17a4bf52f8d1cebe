from __future__ import annotations

from django.contrib import admin

from .models import Policy, PolicyVersion
from .services import policy_version_record


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = (
        "action_pattern",
        "mode",
        "priority",
        "effective_risk",
        "pending_ttl_seconds",
        "approval_ttl_seconds",
        "enabled",
    )
    list_filter = ("mode", "enabled")
    list_editable = ()
    search_fields = ("action_pattern", "description")
    ordering = ("-priority", "action_pattern")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        verb = "Changed" if change else "Added"
        policy_version_record(actor=request.user, note=f"{verb} policy '{obj.action_pattern}' in the admin.")

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
    list_display = ("number", "created_at", "created_by", "note")
    readonly_fields = ("number", "created_at", "created_by", "note", "snapshot")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
