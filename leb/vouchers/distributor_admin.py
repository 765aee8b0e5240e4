"""Back-office pages of a distributor's account with us: record a payment
against its receivable (finance), and its statement (activated batches
charged, blocked vouchers and payments credited, the balance owed) as a page
and a CSV file."""

from __future__ import annotations

import csv
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import get_currency_precision
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from leb.common.admin import ReadOnlyAdmin, error_text, format_money, format_when, staff_actor

from . import queries
from .actions import VoucherError, do_record_distributor_payment
from .models import Distributor, DistributorPayment

PAY_PERMISSION = "vouchers.add_distributorpayment"
STATEMENT_PERMISSION = "vouchers.view_distributorpayment"
KIND_LABELS = {
    queries.INVOICED: _("vouchers activated"),
    queries.BLOCKED: _("vouchers blocked"),
    queries.PAID: _("payment"),
}


class PaymentForm(forms.Form):
    amount = forms.CharField(label=_("Amount"), max_length=20, help_text=_("e.g. 1250.00"))
    currency = forms.ChoiceField(label=_("Currency"))
    reference = forms.CharField(
        label=_("Payment reference"),
        max_length=100,
        help_text=_("The bank's or cashier's reference; each is recorded once."),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args: Any, currencies: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(c, c) for c in currencies]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        raw, currency = data.get("amount"), data.get("currency")
        if raw and currency:
            try:
                value = Decimal(str(raw).replace(",", "").strip())
            except InvalidOperation:
                value = Decimal("NaN")
            minor = value.scaleb(get_currency_precision(currency)) if value.is_finite() else value
            if not minor.is_finite() or minor != minor.to_integral_value() or minor <= 0:
                self.add_error(
                    "amount",
                    _("Enter an amount of money more than zero, e.g. 1250.00."),
                )
            else:
                data["minor"] = int(minor)
        return data


@admin.register(DistributorPayment)
class DistributorPaymentAdmin(ReadOnlyAdmin):
    list_display = ("distributor", "amount_display", "reference", "recorded_by", "created_at")
    list_filter = ("currency", "distributor")
    search_fields = ("=reference", "distributor__code")

    @admin.display(description=_("amount"))
    def amount_display(self, payment: DistributorPayment) -> str:
        return format_money(payment.amount, payment.currency)


class DistributorAccountViews:
    """The payment form and the statement, registered by DistributorAdmin."""

    def __init__(self, model_admin: admin.ModelAdmin) -> None:
        self.model_admin = model_admin
        self.site = model_admin.admin_site

    def urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/payment/",
                self.site.admin_view(self.payment_view),
                name="vouchers_distributor_payment",
            ),
            path(
                "<path:object_id>/statement/",
                self.site.admin_view(self.statement_view),
                name="vouchers_distributor_statement",
            ),
        ]

    def _distributor(self, object_id: str) -> Distributor:
        distributor = (
            Distributor.objects.filter(pk=unquote(object_id)).first()
            if str(object_id).isdigit()
            else None
        )
        if distributor is None:
            raise Http404
        return distributor

    def _context(
        self, request: HttpRequest, distributor: Distributor, title: str
    ) -> dict[str, Any]:
        return {
            **self.site.each_context(request),
            "opts": Distributor._meta,
            "original": distributor,
            "title": title,
            "change_url": reverse("admin:vouchers_distributor_change", args=[distributor.pk]),
        }

    def payment_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm(PAY_PERMISSION):
            raise PermissionDenied
        distributor = self._distributor(object_id)
        currencies = queries.distributor_currencies(distributor)
        if request.method == "POST":
            form = PaymentForm(request.POST, currencies=currencies)
            if form.is_valid():
                try:
                    do_record_distributor_payment(
                        distributor,
                        form.cleaned_data["minor"],
                        form.cleaned_data["currency"],
                        form.cleaned_data["reference"],
                        actor=staff_actor(request),
                        idempotency_key=f"distributor-payment-form:{form.cleaned_data['idempotency_key']}",
                    )
                except (VoucherError, ValidationError) as exc:
                    form.add_error(None, error_text(exc))
                else:
                    messages.success(request, _t("The payment was recorded."))
                    url = reverse("admin:vouchers_distributor_statement", args=[distributor.pk])
                    return HttpResponseRedirect(f"{url}?currency={form.cleaned_data['currency']}")
        else:
            form = PaymentForm(
                initial={
                    "idempotency_key": uuid.uuid4().hex,
                    "currency": currencies[0] if currencies else "",
                },
                currencies=currencies,
            )
        context = {
            **self._context(request, distributor, _t("Record a payment")),
            "form": form,
            "has_currencies": bool(currencies),
        }
        return TemplateResponse(request, "admin/vouchers/distributor/payment.html", context)

    def statement_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm(STATEMENT_PERMISSION):
            raise PermissionDenied
        distributor = self._distributor(object_id)
        currencies = queries.distributor_currencies(distributor)
        currency = request.GET.get("currency") or (currencies[0] if currencies else "")
        if currencies and currency not in currencies:
            messages.error(request, _t("This distributor has no account in that currency."))
            currency = currencies[0]
        statement = queries.distributor_statement(distributor, currency)
        if request.GET.get("format") == "csv":
            return self._csv(statement)
        rows = [
            {
                "at": format_when(line.at),
                "kind": KIND_LABELS[line.kind],
                "description": line.description,
                "charged": format_money(line.charged, currency) if line.charged else "",
                "credited": format_money(line.credited, currency) if line.credited else "",
                "owed": format_money(line.owed_after, currency),
            }
            for line in statement.lines
        ]
        context = {
            **self._context(
                request, distributor, _t("Statement of %(name)s") % {"name": distributor.name}
            ),
            "currencies": currencies,
            "currency": currency,
            "rows": rows,
            "invoiced": format_money(statement.invoiced, currency),
            "blocked": format_money(statement.blocked, currency),
            "paid": format_money(statement.paid, currency),
            "owed": format_money(statement.owed, currency),
            "can_pay": request.user.has_perm(PAY_PERMISSION),
        }
        return TemplateResponse(request, "admin/vouchers/distributor/statement.html", context)

    def _csv(self, statement: queries.Statement) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        filename = f"statement-{statement.distributor.code}-{statement.currency}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        writer = csv.writer(response)
        writer.writerow(
            ["at", "kind", "description", "charged", "credited", "owed_after", "currency"]
        )
        for line in statement.lines:
            writer.writerow(
                [
                    line.at.isoformat(),
                    line.kind,
                    line.description,
                    line.charged,
                    line.credited,
                    line.owed_after,
                    statement.currency,
                ]
            )
        writer.writerow(
            [
                "",
                "total",
                "",
                statement.invoiced - statement.blocked,
                statement.paid,
                statement.owed,
                statement.currency,
            ]
        )
        return response
