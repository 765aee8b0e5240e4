"""The monthly commission statement: per agent per month, sales, wholesale,
commission, deposits and the float at the month's end (leb.agents.reports).
Finance reads it in the back office, the agent's owner in the portal; both
download it as CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from leb.common import clock
from leb.common.admin import format_money

from . import reports
from .admin_reports import PERMISSIONS
from .members import portal_page
from .models import Agent, AgentMember

DEFAULT_MONTHS = 6


class MonthRangeForm(forms.Form):
    month_from = forms.CharField(
        label=_("From month"), widget=forms.TextInput(attrs={"type": "month"}), max_length=7
    )
    month_to = forms.CharField(
        label=_("To month"), widget=forms.TextInput(attrs={"type": "month"}), max_length=7
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            first = reports.parse_month(data.get("month_from", ""))
            last = reports.parse_month(data.get("month_to", ""))
            data["months"] = reports.month_range(first, last)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc
        return data


def default_range() -> dict[str, str]:
    this_month = timezone.localdate(clock.now()).replace(day=1)
    first = this_month
    for _step in range(DEFAULT_MONTHS - 1):
        first = (first.replace(day=1) - timedelta(days=1)).replace(day=1)
    return {"month_from": first.strftime("%Y-%m"), "month_to": this_month.strftime("%Y-%m")}


def _form(request: HttpRequest) -> MonthRangeForm:
    return MonthRangeForm(request.GET if "month_from" in request.GET else default_range())


def _rows(agent: Agent, statements: list[reports.MonthStatement]) -> list[dict[str, Any]]:
    money = agent.currency
    return [
        {
            "month": s.month,
            "topups": s.figures.net_topups,
            "retail": format_money(s.figures.net_retail, money),
            "wholesale": format_money(s.figures.net_wholesale, money),
            "commission": format_money(s.figures.net_commission, money),
            "deposits": format_money(s.deposits, money),
            "deposit_count": s.deposit_count,
            "opening": format_money(s.opening_float, money),
            "closing": format_money(s.closing_float, money),
        }
        for s in statements
    ]


def _csv(
    agent: Agent, statements: list[reports.MonthStatement], months: list[date]
) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(reports.MONTHLY_CSV_HEADER)
    writer.writerows(reports.monthly_csv_rows(agent, statements))
    # A byte-order mark so spreadsheet programs read the file as UTF-8.
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"commission-{agent.code}-{months[0]:%Y-%m}-{months[-1]:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _statement_context(agent: Agent, form: MonthRangeForm) -> dict[str, Any]:
    context: dict[str, Any] = {"form": form, "statement_rows": None}
    if form.is_valid():
        months = form.cleaned_data["months"]
        statements = reports.monthly_statements(agent, months[0], months[-1])
        context["statement_rows"] = _rows(agent, statements)
        context["csv_query"] = (
            f"month_from={months[0]:%Y-%m}&month_to={months[-1]:%Y-%m}&format=csv"
        )
    return context


# --- Back office ------------------------------------------------------------------


class CommissionViews:
    """Registered through AgentAdmin.get_urls."""

    def __init__(self, model_admin: admin.ModelAdmin) -> None:
        self.model_admin = model_admin
        self.site = model_admin.admin_site

    def urls(self) -> list[URLPattern]:
        return [
            path(
                "commission/<str:code>/",
                self.site.admin_view(self.view),
                name="agents_agent_commission",
            )
        ]

    def view(self, request: HttpRequest, code: str) -> HttpResponse:
        if not request.user.has_perms(PERMISSIONS):
            raise PermissionDenied
        agent = Agent.objects.filter(code=code).first()
        if agent is None:
            raise Http404(_t("There is no agent with this code."))
        form = _form(request)
        if request.GET.get("format") == "csv" and form.is_valid():
            months = form.cleaned_data["months"]
            return _csv(agent, reports.monthly_statements(agent, months[0], months[-1]), months)
        context = {
            **self.site.each_context(request),
            "opts": self.model_admin.opts,
            "title": _t("Monthly commission statement of %(agent)s") % {"agent": str(agent)},
            "agent": agent,
            **_statement_context(agent, form),
        }
        return TemplateResponse(request, "admin/agents/commission.html", context)


# --- Agent portal (owners) --------------------------------------------------------


@require_safe
@portal_page(owner_only=True)
def portal_commission(request: HttpRequest, member: AgentMember) -> HttpResponse:
    agent = member.agent
    form = _form(request)
    if request.GET.get("format") == "csv" and form.is_valid():
        months = form.cleaned_data["months"]
        return _csv(agent, reports.monthly_statements(agent, months[0], months[-1]), months)
    context = {"member": member, "agent": agent, **_statement_context(agent, form)}
    status = 200 if form.is_valid() else 400
    return render(request, "agents/portal/commission.html", context, status=status)
