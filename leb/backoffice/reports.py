"""Back-office page: the prepaid liability and breakage report
(/ops/reports/liability/). Subscriber balances, forfeited balances and
voucher liability per currency and month, from leb.ledger.queries; each
table names the ledger accounts and transfer codes behind its figures.
Needs `ledger.view_liability_report` (finance and admin roles)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from leb.common.admin import format_money
from leb.ledger.queries import (
    OTHER,
    SectionReport,
    check_month_range,
    default_month_range,
    liability_report,
    parse_month,
)

PERMISSION = "ledger.view_liability_report"


class MonthRangeForm(forms.Form):
    month_from = forms.CharField(
        label=_("From month"),
        max_length=7,
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "2026-01"}),
        help_text=_("YYYY-MM, in the operator's time zone."),
    )
    month_to = forms.CharField(
        label=_("To month"),
        max_length=7,
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "2026-06"}),
        help_text=_("Included."),
    )

    def clean_month_from(self) -> date:
        return _month(self.cleaned_data.get("month_from", ""))

    def clean_month_to(self) -> date:
        return _month(self.cleaned_data.get("month_to", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("month_from"), data.get("month_to")
        if isinstance(first, date) and isinstance(last, date):
            try:
                data["month_from"], data["month_to"] = check_month_range(first, last)
            except ValidationError as exc:
                raise ValidationError(exc.messages) from exc
        return data


def _month(text: str) -> date:
    try:
        return parse_month(text)
    except ValidationError as exc:
        raise ValidationError(exc.messages) from exc


def table(section: SectionReport) -> dict[str, Any]:
    """One section as the template shows it: a row per month, a column per movement."""
    currency = section.currency
    columns = section.columns
    return {
        "key": section.section.key,
        "title": section.section.title,
        "help": section.section.help,
        "account_codes": section.account_codes,
        "accounts": section.accounts,
        "columns": [
            {
                "label": column.label,
                "codes": ", ".join(column.codes)
                if column.key != OTHER
                else ", ".join(code for code, key in section.codes.items() if key == OTHER),
            }
            for column in columns
        ],
        "rows": [
            {
                "month": month.month,
                "opening": format_money(month.opening, currency),
                "cells": [format_money(month.movement(c.key), currency) for c in columns],
                "closing": format_money(month.closing, currency),
            }
            for month in section.months
        ],
        "totals": {
            "opening": format_money(section.opening, currency),
            "cells": [format_money(section.total(c.key), currency) for c in columns],
            "closing": format_money(section.closing, currency),
        },
    }


def liability_view(request: HttpRequest, site: Any) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    if "month_from" in request.GET or "month_to" in request.GET:
        form = MonthRangeForm(request.GET)
    else:
        first, last = default_month_range()
        form = MonthRangeForm({"month_from": f"{first:%Y-%m}", "month_to": f"{last:%Y-%m}"})
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": _("Prepaid liability and breakage"),
        "subtitle": None,
        "form": form,
    }
    if form.is_valid():
        report = liability_report(form.cleaned_data["month_from"], form.cleaned_data["month_to"])
        context["report"] = report
        context["currencies"] = [
            {"currency": currency, "tables": [table(section) for section in sections]}
            for currency, sections in report.currencies.items()
        ]
    return TemplateResponse(request, "backoffice/liability_report.html", context)
