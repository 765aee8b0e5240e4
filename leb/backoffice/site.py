"""The back office's admin site: Django's, with the dashboard on its first page.

Installed in place of `django.contrib.admin` (settings.INSTALLED_APPS), so
every app's `admin.site.register` lands here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse


class BackOfficeSite(admin.AdminSite):
    index_template = "backoffice/index.html"

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        from . import dashboard

        extra_context = {**(extra_context or {}), "dashboard": dashboard.build(request.user)}
        return super().index(request, extra_context)


class BackOfficeAdminConfig(AdminConfig):
    default_site = "leb.backoffice.site.BackOfficeSite"
