from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from leb.common import clock

from .models import PeriodicJob


@admin.register(PeriodicJob)
class PeriodicJobAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "task_path",
        "interval_seconds",
        "next_run_at",
        "last_run_at",
        "last_task",
    )
    # The schedule lives in code and is re-applied on every tick; only the next
    # run may be moved here (earlier to run a job now, later to hold it off).
    readonly_fields = ("name", "task_path", "interval_seconds", "last_run_at", "last_task")
    fields = ("name", "task_path", "interval_seconds", "next_run_at", "last_run_at", "last_task")
    actions = ["run_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("last enqueued task"))
    def last_task(self, job: PeriodicJob) -> str:
        if not job.last_enqueued_task_id:
            return "-"
        try:
            url = reverse(
                "admin:django_tasks_database_dbtaskresult_change",
                args=[job.last_enqueued_task_id],
            )
        except NoReverseMatch:
            return job.last_enqueued_task_id
        return format_html('<a href="{}">{}</a>', url, job.last_enqueued_task_id)

    @admin.action(description=_("Run now (at the next scheduler tick)"))
    def run_now(self, request: HttpRequest, queryset: QuerySet[PeriodicJob]) -> None:
        count = queryset.update(next_run_at=clock.now())
        self.message_user(
            request,
            ngettext("%d job will run within seconds.", "%d jobs will run within seconds.", count)
            % count,
            messages.SUCCESS,
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not self.has_change_permission(request):
            actions.pop("run_now", None)
        return actions
