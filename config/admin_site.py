"""The admin site, asking the same second-factor rule as every other page."""

from __future__ import annotations

from django.contrib import admin

from reviewers.two_factor import request_second_factor_step


class CountersignAdminSite(admin.AdminSite):
    def has_permission(self, request) -> bool:
        # A session that still owes a code (a user with a device), or a staff user who must enrol under
        # COUNTERSIGN_REQUIRE_2FA, is not an admin yet, whatever its password proved.
        return super().has_permission(request) and request_second_factor_step(request) is None
