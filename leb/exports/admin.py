"""The back office's Exports page (the member of staff's own export jobs with
their progress and downloads), the export form a changelist's "Export" link
opens, and the download. See docs/exports.md and docs/backoffice.md."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from leb.common import clock
from leb.common.admin import ReadOnlyAdmin, format_when
from leb.common.exporting import Dataset

from .actions import ExportRefused, do_record_export_download, do_request_export
from .files import path_of
from .models import ExportFormat, ExportJob, ExportStatus
from .registry import registry
from .writers import CONTENT_TYPES

# Seconds between reloads of the Exports page while a job is queued or running.
REFRESH_SECONDS = 3


class FormatForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Format"),
        choices=ExportFormat.choices,
        initial=ExportFormat.XLSX,
        widget=forms.RadioSelect,
    )


def visible_jobs(user: Any) -> QuerySet[ExportJob]:
    """A member of staff sees their own exports; a superuser sees everyone's."""
    jobs = ExportJob.objects.select_related("requested_by")
    return jobs if user.is_superuser else jobs.filter(requested_by=user)


def filters_text(dataset: Dataset | None, filters: dict[str, Any]) -> str:
    if not filters:
        return gettext("none (everything)")
    parts = []
    for param, value in sorted(filters.items()):
        spec = dataset.filter_for(param) if dataset else None
        name = str(spec.label) if spec is not None and spec.label else param
        parts.append(f"{name} ({param}) = {value}")
    return "; ".join(parts)


def progress_text(job: ExportJob) -> str:
    if job.status == ExportStatus.QUEUED:
        return gettext("Waiting for a worker")
    if job.rows_total is None:
        return gettext("Counting rows")
    return gettext("%(done)s of %(total)s rows (%(percent)s%%)") % {
        "done": f"{job.rows_done:,}",
        "total": f"{job.rows_total:,}",
        "percent": job.percent,
    }


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyAdmin):
    """Only the list (the Exports page) and the two pages below: a job is made
    by the export form and changed only by its task."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExportJob]:
        user = getattr(request, "user", None)
        return visible_jobs(user) if user is not None else ExportJob.objects.none()

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "", self.admin_site.admin_view(self.jobs_view), name="exports_exportjob_changelist"
            ),
            path(
                "new/",
                self.admin_site.admin_view(self.request_view),
                name="exports_exportjob_request",
            ),
            path(
                "<uuid:public_id>/download/",
                self.admin_site.admin_view(self.export_file),
                name="exports_exportjob_download",
            ),
            *super().get_urls()[1:],
        ]

    def _context(self, request: HttpRequest, title: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.opts}

    def jobs_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        jobs = list(visible_jobs(request.user)[:100])
        rows = []
        for job in jobs:
            dataset = registry.get(job.dataset)
            rows.append(
                {
                    "job": job,
                    "dataset": dataset.label if dataset else job.dataset,
                    "filters": filters_text(dataset, job.filters),
                    "requested": format_when(job.requested_at),
                    "expires": format_when(job.expires_at),
                    "progress": progress_text(job),
                    "download": (
                        reverse("admin:exports_exportjob_download", args=[job.public_id])
                        if job.status == ExportStatus.DONE
                        else ""
                    ),
                }
            )
        offered = [
            {
                "label": dataset.label,
                "url": reverse("admin:exports_exportjob_request") + f"?dataset={dataset.name}",
            }
            for dataset in registry.all()
            if request.user.has_perm(dataset.permission)
        ]
        context = {
            **self._context(request, _("Exports")),
            "rows": rows,
            "offered": offered,
            "refresh": REFRESH_SECONDS
            if any(job.status in (ExportStatus.QUEUED, ExportStatus.RUNNING) for job in jobs)
            else 0,
        }
        return TemplateResponse(request, "exports/jobs.html", context)

    def request_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        name = source.get("dataset", "")
        dataset = registry.get(name)
        if dataset is None:
            messages.error(request, gettext("There is no export named %(name)s.") % {"name": name})
            return HttpResponseRedirect(reverse("admin:exports_exportjob_changelist"))
        context = self._context(
            request, gettext("Export: %(dataset)s") % {"dataset": dataset.label}
        )
        context["dataset"] = dataset
        if not request.user.has_perm(dataset.permission):
            # Said on the page, with nothing written.
            context["refusal"] = gettext(
                "You may not export %(dataset)s: your role does not include it."
            ) % {"dataset": dataset.label}
            return TemplateResponse(request, "exports/request.html", context, status=403)
        asked = [spec for spec in dataset.filters if spec.asked]
        asked_params = {spec.param for spec in asked}
        filters = {
            key: value
            for key, value in source.items()
            if key not in ("dataset", "format", "csrfmiddlewaretoken") and dataset.kept(key, value)
        }
        form = FormatForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                job = do_request_export(
                    request.user, dataset.name, form.cleaned_data["format"], filters
                )
            except ExportRefused as exc:
                context["error"] = str(exc)
            else:
                messages.success(
                    request,
                    gettext("Export of %(dataset)s queued; this page shows its progress.")
                    % {"dataset": dataset.label},
                )
                return HttpResponseRedirect(
                    reverse("admin:exports_exportjob_changelist") + f"#job-{job.public_id}"
                )
        if request.method != "POST":
            # A filter the export cannot honour is said before the form is sent.
            try:
                dataset.clean_filters(filters)
            except ValidationError as exc:
                context["error"] = " ".join(exc.messages)
        today = timezone.localdate(clock.now())
        defaults = {"date_from": today.replace(day=1).isoformat(), "date_to": today.isoformat()}
        context.update(
            {
                "form": form,
                "hidden": [(k, v) for k, v in filters.items() if k not in asked_params],
                "asked": [
                    {
                        "param": spec.param,
                        "label": spec.label,
                        "value": filters.get(spec.param, defaults.get(spec.param, "")),
                    }
                    for spec in asked
                ],
                "filters_text": filters_text(
                    dataset, {k: v for k, v in filters.items() if k not in asked_params}
                ),
            }
        )
        status = 400 if "error" in context else 200
        return TemplateResponse(request, "exports/request.html", context, status=status)

    def export_file(self, request: HttpRequest, public_id: UUID) -> HttpResponse | FileResponse:
        # Someone else's export is not found, whoever asks (but a superuser).
        job = visible_jobs(request.user).filter(public_id=public_id).first()
        if job is None:
            raise Http404(gettext("No export of yours has this reference."))
        path_ = path_of(job.file_name)
        if job.status != ExportStatus.DONE or path_ is None or not path_.exists():
            messages.warning(request, gettext("This export has no file to download (yet)."))
            return HttpResponseRedirect(reverse("admin:exports_exportjob_changelist"))
        do_record_export_download(job, request.user)
        stamp = timezone.localtime(job.requested_at).strftime("%Y%m%d-%H%M")
        return FileResponse(
            path_.open("rb"),
            as_attachment=True,
            filename=f"{job.dataset}-{stamp}.{job.format}",
            content_type=CONTENT_TYPES[job.format],
        )
