"""Reads for receipts and top-up history: only the caller's own orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.translation import gettext as _

from leb.catalog.quotes import Quote
from leb.lines.models import Line
from leb.portal.formatting import format_money
from leb.topups.models import OrderStatus, TopUpOrder

from . import signing

# Orders that are finished for the subscriber; pending ones are not history yet.
HISTORY_STATUSES = (OrderStatus.FULFILLED, OrderStatus.REFUNDED, OrderStatus.FAILED)
RECEIPT_STATUSES = (OrderStatus.FULFILLED, OrderStatus.REFUNDED)


def breakdown_labels() -> dict[str, str]:
    return {
        "list_price": _("List price"),
        "discount": _("Discount"),
        "price": _("Price paid"),
        "credit": _("Credit"),
        "bonus_credit": _("Bonus credit"),
        "restore_fee": _("Restore fee"),
    }


def _visible_to(user: Any) -> Q:
    return Q(customer=user) | Q(line__owner=user)


def order_label(order: TopUpOrder, language: str | None = None) -> str:
    """The plan's name, or the amount for a free-amount top-up."""
    if order.plan is not None:
        return order.plan.display_name(language)
    list_price = int(order.quote.get("list_price") or order.price)
    return _("Top-up of %(amount)s") % {
        "amount": format_money(list_price, order.currency, language)
    }


def last_digits(msisdn: str, count: int = 4) -> str:
    digits = "".join(ch for ch in msisdn if ch.isdigit())
    return digits[-count:]


def verify_path(order: TopUpOrder) -> str:
    return reverse(
        "receipts:verify",
        kwargs={"receipt_number": order.receipt_number, "signature": signing.signature(order)},
    )


def verify_url(order: TopUpOrder) -> str:
    # The configured site address, not the request's Host header: the QR code
    # is printed and must not point wherever a request claimed to come from.
    return getattr(settings, "SITE_URL", "").rstrip("/") + verify_path(order)


@dataclass(frozen=True)
class BreakdownRow:
    key: str
    label: str
    amount: int


@dataclass(frozen=True)
class Receipt:
    order: TopUpOrder
    quote: Quote
    msisdn: str
    label: str
    breakdown: list[BreakdownRow]
    verify_url: str

    @property
    def receipt_number(self) -> str:
        return self.order.receipt_number or ""

    @property
    def is_refunded(self) -> bool:
        return self.order.status == OrderStatus.REFUNDED


def build_receipt(order: TopUpOrder, language: str | None = None) -> Receipt:
    quote = Quote.from_dict(order.quote)
    labels = breakdown_labels()
    return Receipt(
        order=order,
        quote=quote,
        msisdn=order.line.msisdn,
        label=order_label(order, language),
        breakdown=[BreakdownRow(key, labels[key], amount) for key, amount in quote.breakdown()],
        verify_url=verify_url(order),
    )


def receipts_for_user(user: Any) -> QuerySet[TopUpOrder]:
    """Every receipt the user may see, newest first."""
    return (
        TopUpOrder.objects.select_related("line__phone_number", "plan")
        .filter(_visible_to(user), status__in=RECEIPT_STATUSES, receipt_number__isnull=False)
        .order_by("-fulfilled_at", "-pk")
    )


def receipt_for_user(user: Any, receipt_number: str) -> TopUpOrder | None:
    return (
        TopUpOrder.objects.select_related("line__phone_number", "plan")
        .filter(_visible_to(user), receipt_number=receipt_number, status__in=RECEIPT_STATUSES)
        .first()
    )


def receipt_by_number(receipt_number: str) -> TopUpOrder | None:
    return (
        TopUpOrder.objects.select_related("line__phone_number")
        .filter(receipt_number=receipt_number, status__in=RECEIPT_STATUSES)
        .first()
    )


def user_lines(user: Any) -> QuerySet[Line]:
    """Lines the user owns or has topped up: the history's line filter."""
    return (
        Line.objects.filter(Q(owner=user) | Q(orders__customer=user))
        .select_related("phone_number")
        .distinct()
        .order_by("phone_number__msisdn", "pk")
    )


def _day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def history(
    user: Any,
    *,
    tz: tzinfo,
    line: Line | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str = "",
) -> QuerySet[TopUpOrder]:
    """The user's finished orders, newest first. An order's date is when it
    completed or failed; days are the user's calendar days."""
    orders = (
        TopUpOrder.objects.filter(_visible_to(user), status__in=HISTORY_STATUSES)
        .annotate(happened_at=Coalesce("fulfilled_at", "finished_at", "created_at"))
        .select_related("line__phone_number", "plan")
    )
    if line is not None:
        orders = orders.filter(line=line)
    if status:
        orders = orders.filter(status=status)
    if date_from is not None:
        orders = orders.filter(happened_at__gte=_day_start(date_from, tz))
    if date_to is not None:
        orders = orders.filter(happened_at__lt=_day_start(date_to + timedelta(days=1), tz))
    return orders.order_by("-happened_at", "-pk")
