from __future__ import annotations

from django.contrib import admin

from .models import AgentKeyGrant, DriftAlert, KnownActionType


@admin.register(AgentKeyGrant)
class AgentKeyGrantAdmin(admin.ModelAdmin):
    list_display = ("key", "scopes", "created_at")


@admin.register(DriftAlert)
class DriftAlertAdmin(admin.ModelAdmin):
    list_display = ("summary", "kind", "status", "times_seen", "last_seen_at")
    list_filter = ("kind", "status")
    readonly_fields = ("pattern_key", "decision_ids", "details")


admin.site.register(KnownActionType)
