from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class CountersignAdminConfig(AdminConfig):
    """django.contrib.admin with our site class (config/admin_site.py) as ``admin.site``."""

    default_site = "config.admin_site.CountersignAdminSite"
