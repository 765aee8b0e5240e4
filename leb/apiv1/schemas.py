"""Request and response shapes of the REST API, and the conversions from
domain objects to them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ninja import Field, Schema

from leb.catalog.schemas import QuoteOut
from leb.common.schemas import Money


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
