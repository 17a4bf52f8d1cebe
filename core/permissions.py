"""Who may use a staff API: one rule for every staff endpoint (policies, agents' limits, pauses)."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission


class StaffModelPermission(BasePermission):
    """Active staff holding a model permission: ``read_permission`` to read, ``write_permission`` to write.

    Subclasses name the two permissions and the message a refused caller reads.
    """

    read_permission = ""
    write_permission = ""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and getattr(user, "is_staff", False) and user.is_active):
            return False
        return user.has_perm(self.read_permission if request.method in SAFE_METHODS else self.write_permission)
