"""Back-office page: agent sales and commission for a date range and a
currency, per agent and totals, one agent's sales by day, CSV exports.

The figures come from leb.agents.reports (sums of ledger transfers). The
page needs `agents.view_agent` and `agents.view_agent_sales`; an export is
written to the audit log."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common.admin import format_money, staff_actor

from . import reports
from .models import Agent

PERMISSIONS = ("agents.view_agent", "agents.view_agent_sales")


class PeriodForm(forms.Form):
    date_from = forms.DateField(
        label=_("From"), help_text=_("The first day, in the operator's time zone.")
    )
    date_to = forms.DateField(label=_("To"), help_text=_("The last day, included."))
    currency = forms.ChoiceField(label=_("Currency"))
    day = forms.DateField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, currencies: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(c, c) for c in currencies]  # type: ignore[attr-defined]
        for name in ("date_from", "date_to"):
            self.fields[name].widget = forms.DateInput(attrs={"type": "date"})
            self.fields[name].error_messages["invalid"] = _(
                "Enter a date as YYYY-MM-DD, e.g. 2026-12-01."
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data.get("currency"):
            try:
                data["period"] = reports.check_period(
                    data["date_from"], data["date_to"], data["currency"]
                )
            except ValidationError as exc:
                raise ValidationError(exc.messages) from exc
            day = data.get("day")
            if day is not None and not data["date_from"] <= day <= data["date_to"]:
                self.add_error("day", _("The day is outside the range."))
        return data


def _initial(currencies: list[str]) -> dict[str, Any]:
    today = timezone.localdate()
    return {
        "date_from": today.replace(day=1).isoformat(),
        "date_to": today.isoformat(),
        "currency": currencies[0] if currencies else "",
    }


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


# Columns: (heading, value of Figures); amounts are formatted, counts are not.
COLUMNS: list[tuple[Any, Callable[[reports.Figures], int], bool]] = [
    (_("Top-ups"), lambda f: f.topups, False),
    (_("Retail value sold"), lambda f: f.retail, True),
    (_("Wholesale paid from float"), lambda f: f.wholesale, True),
    (_("Commission earned"), lambda f: f.commission, True),
    (_("Reversals"), lambda f: f.reversals, False),
    (_("Retail reversed"), lambda f: f.reversed_retail, True),
    (_("Net retail"), lambda f: f.net_retail, True),
    (_("Net wholesale"), lambda f: f.net_wholesale, True),
    (_("Net commission"), lambda f: f.net_commission, True),
]


def _cells(figures: reports.Figures, currency: str) -> list[str]:
    return [
        _money(value(figures), currency) if money else str(value(figures))
        for _heading, value, money in COLUMNS
    ]


def _raw(figures: reports.Figures) -> list[int]:
    return [value(figures) for _heading, value, _money in COLUMNS]


class SalesReportViews:
    """The two pages, registered through AgentAdmin.get_urls."""

    def __init__(self, model_admin: admin.ModelAdmin) -> None:
        self.model_admin = model_admin
        self.site = model_admin.admin_site

    def urls(self) -> list[URLPattern]:
        return [
            path(
                "sales/",
                self.site.admin_view(self.report_view),
                name="agents_agent_sales",
            ),
            path(
                "sales/<str:code>/",
                self.site.admin_view(self.agent_view),
                name="agents_agent_sales_agent",
            ),
        ]

    def _check(self, request: HttpRequest) -> None:
        if not request.user.has_perms(PERMISSIONS):
            raise PermissionDenied

    def _form(self, request: HttpRequest) -> PeriodForm:
        currencies = reports.currencies()
        data = request.GET if "date_from" in request.GET else _initial(currencies)
        return PeriodForm(data, currencies=currencies)

    def _context(self, request: HttpRequest, title: Any, form: PeriodForm) -> dict[str, Any]:
        return {
            **self.site.each_context(request),
            "title": title,
            "opts": self.model_admin.opts,
            "form": form,
            "columns": [heading for heading, _value, _money in COLUMNS],
            "report_url": reverse("admin:agents_agent_sales"),
        }

    def _query(self, form: PeriodForm, **extra: str) -> str:
        data = form.cleaned_data
        values = {
            "date_from": data["date_from"].isoformat(),
            "date_to": data["date_to"].isoformat(),
            "currency": data["currency"],
            **extra,
        }
        return urlencode(values)

    def report_view(self, request: HttpRequest) -> HttpResponse:
        self._check(request)
        form = self._form(request)
        context = self._context(request, _("Agent sales and commission"), form)
        if not form.is_valid():
            return TemplateResponse(request, "admin/agents/sales_report.html", context)
        period: reports.Period = form.cleaned_data["period"]
        report = reports.sales_report(period)
        if request.GET.get("format") == "csv":
            return self._report_csv(request, report)
        agent_base = {
            row.agent.code: reverse("admin:agents_agent_sales_agent", args=[row.agent.code])
            for row in report.rows
        }
        context.update(
            report=report,
            rows=[
                {
                    "agent": row.agent,
                    "url": f"{agent_base[row.agent.code]}?{self._query(form)}",
                    "cells": _cells(row.figures, period.currency),
                }
                for row in report.rows
            ],
            totals=_cells(report.totals, period.currency),
            csv_url=f"?{self._query(form, format='csv')}",
        )
        return TemplateResponse(request, "admin/agents/sales_report.html", context)

    def agent_view(self, request: HttpRequest, code: str) -> HttpResponse:
        self._check(request)
        agent = Agent.objects.filter(code=code).first()
        if agent is None:
            raise Http404(gettext("There is no agent with this code."))
        form = self._form(request)
        context = self._context(request, _("Sales of %(agent)s") % {"agent": str(agent)}, form)
        context["agent"] = agent
        if not form.is_valid():
            return TemplateResponse(request, "admin/agents/sales_report_agent.html", context)
        period: reports.Period = form.cleaned_data["period"]
        if period.currency != agent.currency:
            form.add_error(
                "currency",
                _("This agent's float is in %(currency)s.") % {"currency": agent.currency},
            )
            return TemplateResponse(request, "admin/agents/sales_report_agent.html", context)
        day: date | None = form.cleaned_data.get("day")
        report = reports.agent_report(agent, period, day)
        if request.GET.get("format") == "csv":
            return self._agent_csv(request, report)
        currency = period.currency
        context.update(
            report=report,
            days=[
                {
                    "day": row.day,
                    "url": f"?{self._query(form, day=row.day.isoformat())}",
                    "cells": _cells(row.figures, currency),
                }
                for row in report.days
            ],
            totals=_cells(report.totals, currency),
            sales=[
                {
                    "posted_at": sale.posted_at,
                    "reference": sale.reference,
                    "reversal": sale.kind == reports.REVERSED_SALE,
                    "topup": sale.topup,
                    "retail": _money(sale.figures.retail or sale.figures.reversed_retail, currency),
                    "wholesale": _money(
                        sale.figures.wholesale or sale.figures.reversed_wholesale, currency
                    ),
                    "commission": _money(
                        sale.figures.commission or sale.figures.reversed_commission, currency
                    ),
                }
                for sale in report.sales
            ],
            csv_url=f"?{self._query(form, format='csv')}",
            back_url=f"{reverse('admin:agents_agent_sales')}?{self._query(form)}",
        )
        return TemplateResponse(request, "admin/agents/sales_report_agent.html", context)

    # --- CSV ---------------------------------------------------------------------

    def _csv(self, filename: str) -> tuple[HttpResponse, Any]:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response, csv.writer(response)

    def _audit(self, request: HttpRequest, period: reports.Period, target: str) -> None:
        record(
            staff_actor(request),
            AuditAction.AGENT_SALES_EXPORT,
            target,
            {
                "from": period.date_from.isoformat(),
                "to": period.date_to.isoformat(),
                "currency": period.currency,
            },
        )

    HEADINGS = [
        "top_ups",
        "retail",
        "wholesale",
        "commission",
        "reversals",
        "retail_reversed",
        "net_retail",
        "net_wholesale",
        "net_commission",
    ]

    def _report_csv(self, request: HttpRequest, report: reports.SalesReport) -> HttpResponse:
        period = report.period
        self._audit(request, period, f"agent-sales:{period.currency}")
        response, writer = self._csv(
            f"agent-sales-{period.currency}-{period.date_from}-{period.date_to}.csv"
        )
        writer.writerow(["agent", "name", "currency", *self.HEADINGS])
        for row in report.rows:
            writer.writerow(
                [row.agent.code, row.agent.display_name, period.currency, *_raw(row.figures)]
            )
        writer.writerow(["total", "", period.currency, *_raw(report.totals)])
        return response

    def _agent_csv(self, request: HttpRequest, report: reports.AgentReport) -> HttpResponse:
        period = report.period
        self._audit(request, period, f"agent:{report.agent.code}")
        response, writer = self._csv(
            f"agent-sales-{report.agent.code}-{period.date_from}-{period.date_to}.csv"
        )
        writer.writerow(["day", "agent", "currency", *self.HEADINGS])
        for row in report.days:
            writer.writerow(
                [row.day.isoformat(), report.agent.code, period.currency, *_raw(row.figures)]
            )
        writer.writerow(["total", report.agent.code, period.currency, *_raw(report.totals)])
        return response


def can_view_sales(request: HttpRequest) -> bool:
    return bool(request.user.has_perms(PERMISSIONS))
