"""The top-up orders as an export (leb.exports): the order list's filters, one
row per order. See docs/exports.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from leb.catalog.models import Channel
from leb.common.exporting import (
    Column,
    Dataset,
    Kind,
    Money,
    Registry,
    boolean_filter,
    choice_filter,
    date_filters,
    date_hierarchy_filters,
    text_filter,
)

from .models import OrderStatus, TopUpOrder

# The order list's filters and search (leb.topups.admin.TopUpOrderAdmin).
ORDER_FILTERS = [
    choice_filter("status__exact", OrderStatus.choices, label=_("status")),
    choice_filter("channel__exact", Channel.choices, label=_("channel")),
    text_filter("currency__exact", label=_("currency"), max_length=3),
    boolean_filter("refund_due__exact", label=_("refund due at the provider")),
    text_filter("payment_provider__exact", label=_("payment provider"), max_length=20),
    *date_filters("fulfilled_at", label=_("completed")),
    *date_hierarchy_filters("created_at", label=_("created")),
]
ORDER_SEARCH = (
    "receipt_number",
    "public_id",
    "line__iccid",
    "line__phone_number__msisdn",
    "payment_reference",
    "idempotency_key",
    "customer__username",
)


def _money(amount: int | None, currency: str) -> Money | None:
    return None if amount is None else Money(int(amount), currency)


class OrdersDataset(Dataset):
    name = "orders"
    label = _("Top-up orders")
    permission = "exports.export_orders"
    changelist = "topups.topuporder"
    filters = ORDER_FILTERS
    search_fields = ORDER_SEARCH
    columns = (
        Column("reference", _("Reference")),
        Column("receipt_number", _("Receipt number")),
        Column("created_at", _("Created"), Kind.DATETIME),
        Column("msisdn", _("Phone number")),
        Column("iccid", _("ICCID")),
        Column("channel", _("Channel")),
        Column("plan", _("Plan")),
        Column("status", _("Status")),
        Column("price", _("Price"), Kind.MONEY),
        Column("paid_amount", _("Paid amount"), Kind.MONEY),
        Column("currency", _("Currency")),
        Column("payment_provider", _("Payment provider")),
        Column("payment_reference", _("Payment reference")),
        Column("paid_at", _("Paid"), Kind.DATETIME),
        Column("fulfilled_at", _("Completed"), Kind.DATETIME),
        Column("valid_until_after", _("Valid until after top-up"), Kind.DATETIME),
        Column("days_added", _("Days added"), Kind.INTEGER),
        Column("refunded_at", _("Refunded"), Kind.DATETIME),
        Column("refund_due", _("Refund due at the provider"), Kind.BOOLEAN),
        Column("failure_reason", _("Reason")),
        Column("actor", _("Created by")),
    )

    def queryset(self, cleaned: dict[str, Any]) -> QuerySet[TopUpOrder]:
        return TopUpOrder.objects.select_related("line__phone_number", "plan")

    def row(self, order: TopUpOrder) -> Sequence[Any]:
        line = order.line
        return (
            str(order.public_id),
            order.receipt_number or "",
            order.created_at,
            line.msisdn,
            line.iccid,
            order.get_channel_display(),
            order.plan.display_name() if order.plan else "",
            order.get_status_display(),
            _money(order.price, order.currency),
            _money(order.paid_amount, order.currency),
            order.currency,
            order.payment_provider,
            order.payment_reference,
            order.paid_at,
            order.fulfilled_at,
            order.valid_until_after,
            order.days_added,
            order.refunded_at,
            order.refund_due,
            order.failure_reason,
            order.actor,
        )


def register(registry: Registry) -> None:
    registry.add(OrdersDataset())
