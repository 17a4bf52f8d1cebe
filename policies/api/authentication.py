from __future__ import annotations

from rest_framework.authentication import SessionAuthentication, TokenAuthentication

from core.permissions import StaffModelPermission


class StaffTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <staff token>`` (DRF authtoken). Agent keys use ``Bearer`` and never match."""

    keyword = "Token"


# The policy API is for people: session or staff token, never an agent key.
STAFF_AUTHENTICATION = [StaffTokenAuthentication, SessionAuthentication]


class IsPolicyAdmin(StaffModelPermission):
    """Staff with the model permission: view_policy to read, change_policy to write."""

    message = "Only staff with permission on the policy table may use this endpoint."
    read_permission = "policies.view_policy"
    write_permission = "policies.change_policy"
