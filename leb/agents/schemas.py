"""Request and response shapes of the agent API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema

from leb.catalog.quotes import Quote
from leb.common.schemas import Money, ProblemOut, money

from .actions import AgentQuote, reason_text
from .models import AgentTopUp, AgentTopUpStatus
from .queries import Balance

__all__ = ["ProblemOut"]


class QuoteIn(Schema):
    msisdn: str = Field(max_length=40, description="The subscriber's number, E.164 preferred.")
    plan_code: str = Field(max_length=40)


class QuoteOut(Schema):
    msisdn: str
    plan_code: str
    wholesale_price: Money = Field(description="What your float pays.")
    retail_value: Money = Field(description="The plan's price to the subscriber.")
    credit: Money = Field(description="Credit added to the line's balance.")
    days_added: int = Field(description="Validity days this top-up really adds now.")
    new_valid_until: datetime


def quote_out(priced: AgentQuote) -> QuoteOut:
    q = priced.quote
    return QuoteOut(
        msisdn=priced.line.msisdn,
        plan_code=priced.plan.code,
        wholesale_price=money(priced.wholesale, q.currency),
        retail_value=money(q.price, q.currency),
        credit=money(q.credit_to_wallet, q.currency),
        days_added=q.days_added,
        new_valid_until=q.new_valid_until,
    )


class TopUpIn(Schema):
    external_id: str = Field(min_length=1, max_length=64, description="Your id; unique per agent.")
    msisdn: str = Field(max_length=40)
    plan_code: str = Field(max_length=40)
    mode: Literal["instant", "two_step"] = "instant"
    allow_repeat: bool = Field(
        default=False,
        description="Set when the same plan is meant to be sold to the same number again "
        "within minutes.",
    )


class TopUpOut(Schema):
    id: str
    external_id: str
    status: str = Field(description="created, confirmed, completed, failed, expired or reversed.")
    reason: str = Field(description="Why it failed (empty otherwise).")
    reason_detail: str
    message: str
    mode: str
    msisdn: str
    plan_code: str
    wholesale_price: Money
    retail_value: Money
    credit: Money | None
    days_added: int | None
    valid_until: datetime | None
    receipt_number: str | None
    created_at: datetime
    expires_at: datetime | None
    completed_at: datetime | None


def topup_out(topup: AgentTopUp) -> TopUpOut:
    order = topup.order
    credit = days = valid_until = None
    receipt = None
    if order is not None:
        frozen = Quote.from_dict(order.quote)
        credit = money(frozen.credit_to_wallet, topup.currency)
        if order.days_added is not None:
            days, valid_until = order.days_added, order.valid_until_after
        else:
            days, valid_until = frozen.days_added, frozen.new_valid_until
        if topup.status == AgentTopUpStatus.COMPLETED:
            receipt = order.receipt_number
    return TopUpOut(
        id=topup.public_id,
        external_id=topup.external_id,
        status=topup.status,
        reason=topup.reason,
        reason_detail=topup.reason_detail,
        message=reason_text(topup.reason),
        mode=topup.mode,
        msisdn=topup.msisdn,
        plan_code=topup.plan_code,
        wholesale_price=money(topup.wholesale_price, topup.currency),
        retail_value=money(topup.retail_price, topup.currency),
        credit=credit,
        days_added=days,
        valid_until=valid_until,
        receipt_number=receipt,
        created_at=topup.created_at,
        expires_at=topup.expires_at,
        completed_at=topup.completed_at,
    )


class BalanceOut(Schema):
    currency: str
    balance: Money = Field(description="Float held for you: available plus reserved.")
    reserved: Money = Field(description="Held for two-step top-ups not yet confirmed.")
    available: Money = Field(description="What new top-ups can use.")


def balance_out(found: Balance) -> BalanceOut:
    c = found.currency
    return BalanceOut(
        currency=c,
        balance=money(found.total, c),
        reserved=money(found.reserved, c),
        available=money(found.available, c),
    )


class StatementRowOut(Schema):
    posted_at: datetime
    code: str
    reference: str
    description: str
    amount: int = Field(description="Minor units: positive into the float, negative out.")
    balance: int = Field(description="Available float after this movement.")


class StatementOut(Schema):
    currency: str
    date_from: str
    date_to: str
    opening_balance: int
    closing_balance: int
    rows: list[StatementRowOut]
