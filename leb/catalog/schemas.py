"""API shapes of quotes, shared by every router that prices a top-up."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from ninja import Field, Schema

from leb.common.formatting import format_local_date, format_money
from leb.common.schemas import Money, money

from .quotes import Quote, breakdown_label, days_added_sentence


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
            {"key": key, "label": breakdown_label(key), "amount": money(amount, frozen.currency)}
            for key, amount in frozen.breakdown()
        ],
    )
    return data
