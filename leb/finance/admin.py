"""Back office pages of the daily settlement: the runs (one per day, provider
and currency) with their mismatches, the mismatch list, and a form that
reconciles a day now. Runs are written only by do_reconcile_day, so the pages
are read-only; reconciling needs `finance.reconcile_settlement`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from leb.common.admin import ReadOnlyAdmin, ReadOnlyMixin, format_money, staff_actor

from .actions import SettlementError, do_reconcile_day, reconcilable_providers
from .models import Mismatch, SettlementRun

RECONCILE_PERMISSION = "finance.reconcile_settlement"


class MismatchInline(ReadOnlyMixin, admin.TabularInline):
    model = Mismatch
    extra = 0
    fields = ("kind", "order", "attempt", "reference", "leb_money", "provider_money", "detail")
    readonly_fields = fields

    @admin.display(description=_("amount per leb"))
    def leb_money(self, mismatch: Mismatch) -> str:
        return format_money(mismatch.leb_amount, mismatch.run.currency)

    @admin.display(description=_("amount per provider"))
    def provider_money(self, mismatch: Mismatch) -> str:
        return format_money(mismatch.provider_amount, mismatch.run.currency)


class ReconcileForm(forms.Form):
    day = forms.DateField(
        label=_("Day"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("A day that has ended, in the operator's time zone."),
        error_messages={"invalid": _("Enter a date as YYYY-MM-DD, e.g. 2026-12-01.")},
    )
    provider = forms.ChoiceField(label=_("Provider"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", _("every provider"))] + [(p, p) for p in reconcilable_providers()]
        self.fields["provider"].choices = choices  # type: ignore[attr-defined]


@admin.register(SettlementRun)
class SettlementRunAdmin(ReadOnlyAdmin):
    list_display = (
        "date",
        "provider",
        "currency",
        "captured_leb",
        "captured_provider",
        "refunded_leb",
        "refunded_provider",
        "fees",
        "mismatches_link",
        "created_at",
    )
    list_filter = ("provider", "currency", "date")
    date_hierarchy = "date"
    inlines = [MismatchInline]
    fieldsets = (
        (None, {"fields": ("date", "provider", "currency", "created_at", "actor")}),
        (
            _("leb's ledger"),
            {
                "fields": (
                    "captured_leb",
                    "refunded_leb",
                    "pending_leb",
                    "leb_captures",
                    "leb_refunds",
                )
            },
        ),
        (
            _("The provider's books"),
            {
                "fields": (
                    "captured_provider",
                    "refunded_provider",
                    "pending_provider",
                    "fees",
                    "provider_captures",
                    "provider_refunds",
                )
            },
        ),
        (None, {"fields": ("mismatch_count",)}),
    )
    readonly_fields = (
        "captured_leb",
        "refunded_leb",
        "pending_leb",
        "captured_provider",
        "refunded_provider",
        "pending_provider",
        "fees",
    )

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "reconcile/",
                self.admin_site.admin_view(self.reconcile_view),
                name="finance_settlementrun_reconcile",
            )
        ]
        return custom + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_reconcile": request.user.has_perm(RECONCILE_PERMISSION),
        }
        return super().changelist_view(request, extra_context)

    def reconcile_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(RECONCILE_PERMISSION):
            raise PermissionDenied
        if request.method == "POST":
            form = ReconcileForm(request.POST)
            if form.is_valid():
                day: date = form.cleaned_data["day"]
                try:
                    runs = do_reconcile_day(
                        day, form.cleaned_data["provider"] or None, actor=staff_actor(request)
                    )
                except SettlementError as exc:
                    form.add_error(None, str(exc.message))
                else:
                    found = sum(run.mismatch_count for run in runs)
                    messages.success(
                        request,
                        _t("%(day)s reconciled: %(runs)d run(s), %(found)d mismatch(es).")
                        % {"day": day.isoformat(), "runs": len(runs), "found": found},
                    )
                    url = reverse("admin:finance_settlementrun_changelist")
                    return HttpResponseRedirect(f"{url}?{urlencode({'date': day.isoformat()})}")
        else:
            yesterday = timezone.localdate() - timedelta(days=1)
            form = ReconcileForm(initial={"day": yesterday.isoformat()})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _t("Reconcile a day"),
            "form": form,
        }
        return TemplateResponse(request, "admin/finance/settlementrun/reconcile.html", context)

    def _money(self, run: SettlementRun, amount: int) -> str:
        return format_money(amount, run.currency) if run.currency else "-"

    @admin.display(description=_("captured per leb"), ordering="leb_captured")
    def captured_leb(self, run: SettlementRun) -> str:
        return self._money(run, run.leb_captured)

    @admin.display(description=_("captured per provider"), ordering="provider_captured")
    def captured_provider(self, run: SettlementRun) -> str:
        return self._money(run, run.provider_captured)

    @admin.display(description=_("refunded per leb"))
    def refunded_leb(self, run: SettlementRun) -> str:
        return self._money(run, run.leb_refunded)

    @admin.display(description=_("refunded per provider"))
    def refunded_provider(self, run: SettlementRun) -> str:
        return self._money(run, run.provider_refunded)

    @admin.display(description=_("paid, awaiting fulfilment, per leb"))
    def pending_leb(self, run: SettlementRun) -> str:
        return self._money(run, run.leb_pending)

    @admin.display(description=_("not yet available at the provider"))
    def pending_provider(self, run: SettlementRun) -> str:
        return self._money(run, run.provider_pending)

    @admin.display(description=_("provider fees"))
    def fees(self, run: SettlementRun) -> str:
        return self._money(run, run.provider_fees)

    @admin.display(description=_("mismatches"), ordering="mismatch_count")
    def mismatches_link(self, run: SettlementRun) -> str:
        if not run.mismatch_count:
            return "0"
        url = (
            reverse("admin:finance_mismatch_changelist")
            + "?"
            + urlencode({"run__id__exact": run.pk})
        )
        return format_html('<a href="{}"><strong>{}</strong></a>', url, run.mismatch_count)


@admin.register(Mismatch)
class MismatchAdmin(ReadOnlyAdmin):
    list_display = (
        "kind",
        "run_date",
        "run_provider",
        "order",
        "attempt",
        "reference",
        "leb_money",
        "provider_money",
        "detail",
    )
    list_filter = ("kind", "run__provider", "run__date", "run__id")
    search_fields = ("=reference", "=provider_transaction", "=order__public_id")
    raw_id_fields = ("run", "order", "attempt")
    list_select_related = ("run", "order", "attempt")

    @admin.display(description=_("day"), ordering="run__date")
    def run_date(self, mismatch: Mismatch) -> date:
        return mismatch.run.date

    @admin.display(description=_("provider"), ordering="run__provider")
    def run_provider(self, mismatch: Mismatch) -> str:
        return mismatch.run.provider

    @admin.display(description=_("amount per leb"))
    def leb_money(self, mismatch: Mismatch) -> str:
        return format_money(mismatch.leb_amount, mismatch.run.currency)

    @admin.display(description=_("amount per provider"))
    def provider_money(self, mismatch: Mismatch) -> str:
        return format_money(mismatch.provider_amount, mismatch.run.currency)
