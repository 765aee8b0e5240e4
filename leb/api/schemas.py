"""Request and response shapes of the REST API, and the conversions from
domain objects to them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision, is_currency
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from ninja import Field, Schema

from leb.catalog.quotes import Quote, days_added_sentence
from leb.portal.formatting import format_local_date


def _babel_locale() -> Locale:
    try:
        return Locale.parse(translation.to_locale(translation.get_language() or "en"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def format_money(amount: int, currency: str) -> str:
    if not is_currency(currency):
        return f"{currency} {amount}"
    value = Decimal(amount).scaleb(-get_currency_precision(currency))
    return format_currency(value, currency, locale=_babel_locale())


class Money(Schema):
    amount: int = Field(description="Minor units (cents), never a float.")
    currency: str = Field(description="ISO 4217 code.")
    formatted: str = Field(description="For display, in the request's language.")


def money(amount: int, currency: str) -> Money:
    return Money(amount=amount, currency=currency, formatted=format_money(amount, currency))


class ProblemField(Schema):
    field: str
    message: str
    code: str


class ProblemOut(Schema):
    """RFC 9457 problem document (served as application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemField] | None = None


class LineCheckOut(Schema):
    msisdn: str
    status: str
    status_label: str
    valid_until: datetime | None
    days_left: int
    grace_from: datetime | None
    suspended_from: datetime | None
    number_lost_on: datetime | None
    can_top_up: bool


class PlanOut(Schema):
    code: str
    name: str
    currency: str
    price: Money
    credit: Money
    validity_days: int


class QuoteIn(Schema):
    number: str = Field(max_length=40, description="The phone number to top up.")
    plan_code: str | None = Field(None, max_length=40)
    amount: int | None = Field(None, description="A free amount in minor units.")
    promo_code: str = Field("", max_length=40)
    channel: str = Field("web", max_length=10)


class OrderIn(Schema):
    number: str = Field(max_length=40, description="The phone number to top up.")
    plan_code: str | None = Field(None, max_length=40)
    amount: int | None = Field(None, description="A free amount in minor units.")
    promo_code: str = Field("", max_length=40)


class BreakdownRow(Schema):
    key: str
    label: str
    amount: Money


class QuoteOut(Schema):
    line_id: int
    channel: str
    currency: str
    plan_code: str
    list_price: int
    discount: int
    price: int
    credit: int
    bonus_credit: int
    restore_fee: int
    plan_days: int
    bonus_days: int
    promotion_id: int | None
    promotion_code: str
    promotion_cost: int
    status_before: str
    current_valid_until: datetime | None
    new_valid_until: datetime
    uncapped_valid_until: datetime
    capped: bool
    quoted_at: datetime
    expires_at: datetime
    validity_days: int = Field(
        description="The validity days the plan grants (plan days + promotion bonus days)."
    )
    days_added: int = Field(
        description=(
            "Whole days this top-up really adds to the line's validity: fewer than "
            "`validity_days` when the line's validity cap or its reset rule (days count "
            "from today) takes some; 0 when it adds credit only. The line is then valid "
            "until `new_valid_until`."
        )
    )
    adds_fewer_days: bool = Field(
        description=(
            "True when `days_added` is less than `validity_days`: tell the subscriber "
            "before they pay (see `days_added_text`)."
        )
    )
    days_added_text: str = Field(
        description=(
            "The days added and the new valid-until date in plain words, in the request's "
            "language, with the reason when fewer than the plan's days."
        )
    )
    credit_to_wallet: int
    days_lost_to_cap: int
    is_free_amount: bool
    price_formatted: str
    breakdown: list[BreakdownRow]


def _breakdown_label(key: str) -> str:
    labels = {
        "list_price": _("List price"),
        "discount": _("Discount"),
        "price": _("Price paid"),
        "credit": _("Credit"),
        "bonus_credit": _("Bonus credit"),
        "restore_fee": _("Restore fee"),
    }
    return labels.get(key, key)


def quote_out(frozen: Quote, *, cap_days: int | None = None, done: bool = False) -> dict[str, Any]:
    """The API shape of a quote; `cap_days` is the line's validity cap (for
    the sentence), `done` words it as a top-up already made."""
    data: dict[str, Any] = {f: getattr(frozen, f) for f in Quote.__dataclass_fields__}
    new_date = format_local_date(frozen.new_valid_until, ZoneInfo(settings.TIME_ZONE))
    data.update(
        validity_days=frozen.validity_days,
        days_added=frozen.days_added,
        adds_fewer_days=frozen.adds_fewer_days,
        days_added_text=days_added_sentence(frozen, date=new_date, cap_days=cap_days, done=done),
        credit_to_wallet=frozen.credit_to_wallet,
        days_lost_to_cap=frozen.days_lost_to_cap,
        is_free_amount=frozen.is_free_amount,
        price_formatted=format_money(frozen.price, frozen.currency),
        breakdown=[
            {"key": key, "label": _breakdown_label(key), "amount": money(amount, frozen.currency)}
            for key, amount in frozen.breakdown()
        ],
    )
    return data


class OrderOut(Schema):
    public_id: UUID
    status: str
    status_label: str
    channel: str
    msisdn: str
    price: Money
    currency: str
    quote: QuoteOut
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    fulfilled_at: datetime | None
    receipt_number: str | None
    valid_until_after: datetime | None


class MyLineOut(Schema):
    msisdn: str
    msisdn_display: str
    iccid: str
    status: str
    status_label: str
    valid_until: datetime | None
    days_left: int | None
    balance: Money


class ReceiptOut(Schema):
    receipt_number: str
    status: str
    status_label: str
    fulfilled_at: datetime | None
    msisdn: str
    description: str = Field(description="The plan or amount, in the request's language.")
    price: Money
    validity_days: int
    valid_until_after: datetime | None
    html_url: str
    pdf_url: str
    verify_url: str = Field(description="Public page confirming the receipt is genuine.")


class PaymentIn(Schema):
    provider: str | None = Field(
        None, description="sandbox, stripe or paypal; the site's default if empty."
    )


class PaymentOut(Schema):
    attempt: UUID
    order: UUID
    provider: str
    status: str = Field(description="created, pending, succeeded, failed, cancelled or refunded")
    order_status: str
    checkout_url: str = Field(description="Open this in a browser to pay.")
    amount: Money
