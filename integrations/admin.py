from django.contrib import admin

from .models import SlackIdentity


@admin.register(SlackIdentity)
class SlackIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "team_id", "slack_user_id", "linked_at")
    search_fields = ("user__username", "slack_user_id")
    list_select_related = ("user",)
    readonly_fields = ("linked_at",)
