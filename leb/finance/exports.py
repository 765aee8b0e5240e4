"""The daily settlement as exports (leb.exports): the settlement runs (one row
per day, provider and currency, both sides' figures) and their mismatches,
each with the filters of its own back-office list. See docs/exports.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from leb.common.exporting import (
    Column,
    Dataset,
    Filter,
    Kind,
    Money,
    Registry,
    choice_filter,
    date_hierarchy_filters,
    text_filter,
)

from .models import Mismatch, MismatchKind, SettlementRun

PERMISSION = "exports.export_settlement"


def _day_filter(param: str, label: Any) -> Filter:
    return Filter(param, forms.DateField(), param, label)


def _day_range_filters(field_name: str, label: Any) -> list[Filter]:
    """What the list's filter on a day (DateFieldListFilter on a DateField)
    writes: the first day included, the last excluded, as dates."""
    return [
        _day_filter(f"{field_name}__gte", label),
        _day_filter(f"{field_name}__lt", label),
    ]


def _money(amount: int | None, currency: str) -> Money | None:
    # A run of a day on which neither side booked anything has no currency:
    # its amounts are left empty, as the list shows "-".
    if amount is None or not currency:
        return None
    return Money(int(amount), currency)


class SettlementRunsDataset(Dataset):
    name = "settlement_runs"
    label = _("Settlement runs")
    permission = PERMISSION
    changelist = "finance.settlementrun"
    # The run list's filters and date hierarchy (leb.finance.admin.SettlementRunAdmin),
    # and `date`, which reconciling a day sends the list back with.
    filters = (
        text_filter("provider__exact", label=_("provider"), max_length=20),
        # The list offers the runs without a currency (nothing booked) as "currency__exact=".
        text_filter("currency__exact", label=_("currency"), max_length=3, blank=True),
        _day_filter("date", _("day")),
        *_day_range_filters("date", _("day")),
        *date_hierarchy_filters("date", label=_("day")),
    )
    columns = (
        Column("date", _("Day"), Kind.DATE),
        Column("provider", _("Provider")),
        Column("currency", _("Currency")),
        Column("leb_captured", _("Captured per leb"), Kind.MONEY),
        Column("leb_refunded", _("Refunded per leb"), Kind.MONEY),
        Column("leb_pending", _("Paid, awaiting fulfilment, per leb"), Kind.MONEY),
        Column("leb_captures", _("Captures per leb"), Kind.INTEGER),
        Column("leb_refunds", _("Refunds per leb"), Kind.INTEGER),
        Column("provider_captured", _("Captured per provider"), Kind.MONEY),
        Column("provider_refunded", _("Refunded per provider"), Kind.MONEY),
        Column("provider_pending", _("Not yet available at the provider"), Kind.MONEY),
        Column("provider_fees", _("Provider fees"), Kind.MONEY),
        Column("provider_captures", _("Captures per provider"), Kind.INTEGER),
        Column("provider_refunds", _("Refunds per provider"), Kind.INTEGER),
        Column("mismatch_count", _("Mismatches"), Kind.INTEGER),
        Column("created_at", _("Reconciled"), Kind.DATETIME),
        Column("actor", _("Reconciled by")),
    )

    def queryset(self, cleaned: dict[str, Any]) -> QuerySet[SettlementRun]:
        return SettlementRun.objects.all()

    def row(self, run: SettlementRun) -> Sequence[Any]:
        currency = run.currency
        return (
            run.date,
            run.provider,
            currency,
            _money(run.leb_captured, currency),
            _money(run.leb_refunded, currency),
            _money(run.leb_pending, currency),
            run.leb_captures,
            run.leb_refunds,
            _money(run.provider_captured, currency),
            _money(run.provider_refunded, currency),
            _money(run.provider_pending, currency),
            _money(run.provider_fees, currency),
            run.provider_captures,
            run.provider_refunds,
            run.mismatch_count,
            run.created_at,
            run.actor,
        )


class SettlementMismatchesDataset(Dataset):
    name = "settlement_mismatches"
    label = _("Settlement mismatches")
    permission = PERMISSION
    changelist = "finance.mismatch"
    # The mismatch list's filters and search (leb.finance.admin.MismatchAdmin);
    # `run__id__exact` is what a run's mismatch count links to.
    filters = (
        choice_filter("kind__exact", MismatchKind.choices, label=_("kind")),
        text_filter("run__provider__exact", label=_("provider"), max_length=20),
        *_day_range_filters("run__date", _("day")),
        Filter(
            "run__id__exact",
            forms.IntegerField(min_value=1),
            "run__id__exact",
            _("settlement run"),
        ),
    )
    search_fields = ("=reference", "=provider_transaction", "=order__public_id")
    columns = (
        Column("kind", _("Kind")),
        Column("date", _("Day"), Kind.DATE),
        Column("provider", _("Provider")),
        Column("currency", _("Currency")),
        Column("order", _("Order reference")),
        Column("attempt", _("Payment attempt"), Kind.INTEGER),
        Column("reference", _("Provider reference")),
        Column("provider_transaction", _("Provider transaction")),
        Column("leb_amount", _("Amount per leb"), Kind.MONEY),
        Column("provider_amount", _("Amount per provider"), Kind.MONEY),
        Column("detail", _("Detail")),
        Column("run", _("Settlement run"), Kind.INTEGER),
    )

    def queryset(self, cleaned: dict[str, Any]) -> QuerySet[Mismatch]:
        return Mismatch.objects.select_related("run", "order")

    def row(self, mismatch: Mismatch) -> Sequence[Any]:
        run = mismatch.run
        return (
            mismatch.get_kind_display(),
            run.date,
            run.provider,
            run.currency,
            str(mismatch.order.public_id) if mismatch.order else "",
            mismatch.attempt_id,
            mismatch.reference,
            mismatch.provider_transaction,
            _money(mismatch.leb_amount, run.currency),
            _money(mismatch.provider_amount, run.currency),
            mismatch.detail,
            run.pk,
        )


def register(registry: Registry) -> None:
    registry.add(SettlementRunsDataset())
    registry.add(SettlementMismatchesDataset())
