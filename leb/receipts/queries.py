"""Reads for receipts and top-up history: only the caller's own orders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from leb.catalog.models import Channel
from leb.catalog.quotes import Quote, breakdown_label
from leb.common.formatting import format_local_datetime, format_money, format_phone
from leb.lines.models import Line
from leb.receipts.labels import payment_method_label
from leb.topups.models import OrderStatus, TopUpOrder

from . import signing

# Orders that are finished for the subscriber; pending ones are not history yet.
HISTORY_STATUSES = (OrderStatus.FULFILLED, OrderStatus.REFUNDED, OrderStatus.FAILED)
RECEIPT_STATUSES = (OrderStatus.FULFILLED, OrderStatus.REFUNDED)


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


def guest_path(order: TopUpOrder, *, pdf: bool = False) -> str:
    """The signed link that shows a guest their receipt (see signing)."""
    name = "receipts:guest_pdf" if pdf else "receipts:guest"
    return reverse(name, kwargs={"token": signing.guest_token(order)})


def days_added(order: TopUpOrder, quote: Quote | None = None) -> int:
    """The days the top-up really added. Orders fulfilled before this was
    recorded fall back to what their frozen quote said it would add."""
    if order.days_added is not None:
        return int(order.days_added)
    return (quote or Quote.from_dict(order.quote)).days_added


def _days(count: int) -> str:
    return ngettext("%(days)s day", "%(days)s days", count) % {"days": count}


def days_text(order: TopUpOrder, quote: Quote | None = None) -> str:
    """ "180 days", or "180 days (plan: 365 days; capped)" when the top-up
    added fewer days than the plan grants."""
    quote = quote or Quote.from_dict(order.quote)
    added = days_added(order, quote)
    nominal = quote.validity_days
    if nominal == 0 and added == 0:
        return _("None (credit only)")
    if added == nominal:
        return _days(added)
    values = {"added": _days(added), "plan": _days(nominal)}
    if quote.capped or quote.days_lost_to_cap:
        return _("%(added)s (plan: %(plan)s; capped)") % values
    return _("%(added)s (plan: %(plan)s)") % values


@dataclass(frozen=True)
class Seller:
    kind: str  # "operator" or "agent"
    name: str
    # For an agent leb knows: its public code and the public check of it.
    code: str = ""
    check_url: str = ""


def operator_name() -> str:
    return str(getattr(settings, "OPERATOR_NAME", "") or "leb")


def agent_name(order: TopUpOrder) -> str:
    """The agent that sold an agent-channel order, when the order says: its
    frozen quote's "agent_name", or an actor of the form "agent:<name>"."""
    name = str((order.quote or {}).get("agent_name") or "")
    if not name and order.actor.startswith("agent:"):
        name = order.actor.removeprefix("agent:")
    return name.strip()


def agent_code(order: TopUpOrder) -> str:
    """The selling agent's public code: the frozen quote's "agent_code", or
    the actor "agent:<code>" the agent actions give their orders."""
    code = str((order.quote or {}).get("agent_code") or "")
    if not code and order.actor.startswith("agent:"):
        code = order.actor.removeprefix("agent:")
    return code.strip()


# Channels that sell on leb's behalf name their seller on receipts. The agents
# app registers its lookup when it loads: receipts sit below it and never
# import it.
SellerLookup = Callable[[TopUpOrder, str], "Seller | None"]
_SELLER_LOOKUPS: dict[str, SellerLookup] = {}


def register_seller_lookup(channel: str, lookup: SellerLookup) -> None:
    """`lookup(order, code)` returns the seller of an order of `channel`
    whose public code is `code`, or None when it does not know the code."""
    _SELLER_LOOKUPS[channel] = lookup


def seller_of(order: TopUpOrder) -> Seller:
    if order.channel == Channel.AGENT:
        lookup = _SELLER_LOOKUPS.get(order.channel)
        found = lookup(order, agent_code(order)) if lookup is not None else None
        return found or Seller("agent", agent_name(order))
    return Seller("operator", operator_name())


def seller_text(order: TopUpOrder, seller: Seller | None = None) -> str:
    seller = seller or seller_of(order)
    if seller.kind == "agent":
        if seller.code:
            return _("Authorised agent %(name)s (%(code)s)") % {
                "name": seller.name,
                "code": seller.code,
            }
        if seller.name:
            return _("Authorised agent: %(name)s") % {"name": seller.name}
        return _("Authorised agent")
    return seller.name


def seller_sentence(seller: Seller) -> str:
    """ "Sold by authorised agent Kowloon Phones (HK-7KQ2MX)", for a known agent."""
    return _("Sold by authorised agent %(name)s (%(code)s)") % {
        "name": seller.name,
        "code": seller.code,
    }


@dataclass(frozen=True)
class Fact:
    key: str
    label: str
    value: str
    url: str = ""  # a link that goes with the value (the agent check)


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
    seller: Seller | None = None

    @property
    def receipt_number(self) -> str:
        return self.order.receipt_number or ""

    @property
    def is_refunded(self) -> bool:
        return self.order.status == OrderStatus.REFUNDED

    def facts(self, tz: tzinfo, language: str | None, *, guest: bool = False) -> list[Fact]:
        """The receipt's rows, shared by the page and the PDF. A guest (a
        signed link, no account) sees the number's last digits only and no
        payment reference."""
        order = self.order
        number = (
            _("ending in %(digits)s") % {"digits": last_digits(self.msisdn)}
            if guest
            else format_phone(self.msisdn)
        )
        rows = [
            Fact("receipt_number", _("Receipt number"), self.receipt_number),
            Fact(
                "date",
                _("Date"),
                format_local_datetime(order.fulfilled_at, tz, language)
                if order.fulfilled_at
                else "",
            ),
            Fact("number", _("Number"), number),
            Fact("plan", _("Plan"), self.label),
            Fact("amount", _("Amount"), format_money(order.price, order.currency, language)),
            Fact("days", _("Validity added"), days_text(order, self.quote)),
            Fact(
                "valid_until",
                _("Valid until"),
                format_local_datetime(order.valid_until_after, tz, language)
                if order.valid_until_after
                else "",
            ),
            Fact("channel", _("Channel"), str(order.get_channel_display())),
            Fact("payment", _("Payment"), payment_method_label(order)),
        ]
        if order.payment_reference and not guest:
            rows.append(Fact("reference", _("Payment reference"), order.payment_reference))
        seller = self.seller or seller_of(order)
        rows.append(Fact("seller", _("Sold by"), seller_text(order, seller), seller.check_url))
        return rows


def build_receipt(order: TopUpOrder, language: str | None = None) -> Receipt:
    quote = Quote.from_dict(order.quote)
    return Receipt(
        order=order,
        quote=quote,
        msisdn=order.line.msisdn,
        label=order_label(order, language),
        breakdown=[
            BreakdownRow(key, breakdown_label(key), amount) for key, amount in quote.breakdown()
        ],
        verify_url=verify_url(order),
        seller=seller_of(order),
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
