from __future__ import annotations

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission


class StaffTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <staff token>`` (DRF authtoken). Agent keys use ``Bearer`` and never match."""

    keyword = "Token"


# The policy API is for people: session or staff token, never an agent key.
STAFF_AUTHENTICATION = [StaffTokenAuthentication, SessionAuthentication]


class IsPolicyAdmin(BasePermission):
    """Staff with the model permission: view_policy to read, change_policy to write."""

    message = "Only staff with permission on the policy table may use this endpoint."

    def has_permission(self, request, view):
        user = request.user
        if not (user and getattr(user, "is_staff", False) and user.is_active):
            return False
        needed = "policies.view_policy" if request.method in SAFE_METHODS else "policies.change_policy"
        return user.has_perm(needed)
