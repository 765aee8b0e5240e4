"""Receipts as an export (leb.exports): the numbered proofs of completed
top-ups, taking the order list's filters. See docs/exports.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from leb.common.exporting import Column, Dataset, Kind, Money, Registry
from leb.topups.exports import ORDER_FILTERS, ORDER_SEARCH
from leb.topups.models import TopUpOrder

from .labels import payment_method_label
from .queries import RECEIPT_STATUSES, days_added, order_label


class ReceiptsDataset(Dataset):
    name = "receipts"
    label = _("Receipts")
    permission = "exports.export_receipts"
    changelist = "topups.topuporder"
    filters = ORDER_FILTERS
    search_fields = ORDER_SEARCH
    columns = (
        Column("receipt_number", _("Receipt number")),
        Column("issued_at", _("Completed"), Kind.DATETIME),
        Column("msisdn", _("Phone number")),
        Column("iccid", _("ICCID")),
        Column("item", _("What was bought")),
        Column("amount", _("Amount paid"), Kind.MONEY),
        Column("currency", _("Currency")),
        Column("days_added", _("Days added"), Kind.INTEGER),
        Column("valid_until_after", _("Valid until after top-up"), Kind.DATETIME),
        Column("channel", _("Channel")),
        Column("payment_method", _("Payment method")),
        Column("status", _("Status")),
        Column("refunded_at", _("Refunded"), Kind.DATETIME),
        Column("reference", _("Order reference")),
    )

    def queryset(self, cleaned: dict[str, Any]) -> QuerySet[TopUpOrder]:
        return TopUpOrder.objects.filter(
            status__in=RECEIPT_STATUSES, receipt_number__isnull=False
        ).select_related("line__phone_number", "plan")

    def row(self, order: TopUpOrder) -> Sequence[Any]:
        line = order.line
        paid = order.paid_amount if order.paid_amount is not None else order.price
        return (
            order.receipt_number,
            order.fulfilled_at,
            line.msisdn,
            line.iccid,
            order_label(order),
            Money(int(paid), order.currency),
            order.currency,
            days_added(order),
            order.valid_until_after,
            order.get_channel_display(),
            payment_method_label(order),
            order.get_status_display(),
            order.refunded_at,
            str(order.public_id),
        )


def register(registry: Registry) -> None:
    registry.add(ReceiptsDataset())
