"""The back office's admin site: Django's, with the dashboard on its first page.

Installed in place of `django.contrib.admin` (settings.INSTALLED_APPS), so
every app's `admin.site.register` lands here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path


class BackOfficeSite(admin.AdminSite):
    index_template = "backoffice/index.html"

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        from . import dashboard, reports

        extra_context = {
            **(extra_context or {}),
            "dashboard": dashboard.build(request.user),
            "can_view_liability": request.user.has_perm(reports.PERMISSION),
        }
        return super().index(request, extra_context)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        # Pages of their own, before the admin's catch-all.
        return [
            path(
                "reports/liability/",
                self.admin_view(self.liability_report_view),
                name="liability_report",
            ),
            *super().get_urls(),
        ]

    def liability_report_view(self, request: HttpRequest) -> HttpResponse:
        from . import reports

        return reports.liability_view(request, self)


class BackOfficeAdminConfig(AdminConfig):
    default_site = "leb.backoffice.site.BackOfficeSite"
