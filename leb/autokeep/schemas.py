"""API shapes of the auto-keep endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ninja import Field, Schema


class PaymentMethodOut(Schema):
    id: int
    provider: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    usable: bool = Field(description="active and not expired")
    created_at: datetime


class RunOut(Schema):
    period: datetime = Field(description="the line's valid_until when the threshold was crossed")
    attempt: int
    status: str = Field(
        description=(
            "started, succeeded, failed, or skipped: nothing was charged because the "
            "top-up would have added no days (error_code adds_nothing)"
        )
    )
    error_code: str
    error: str
    order_id: str | None = Field(description="public id of the top-up order")
    created_at: datetime


class AutoKeepOut(Schema):
    enabled: bool = Field(description="a rule exists for this line")
    mode: str | None = None
    plan_code: str | None = None
    days_before: int | None = None
    until: date | None = None
    allow_grace: bool = False
    paused: bool = False
    paused_reason: str = ""
    payment_method_id: int | None = None
    next_check_at: datetime | None = None
    last_run: RunOut | None = None


class AutoKeepIn(Schema):
    mode: Literal["threshold", "cheapest"]
    plan_code: str | None = Field(None, description="threshold mode: the plan to buy")
    days_before: int | None = Field(None, description="threshold mode: top up at N days left")
    until: date | None = Field(None, description="stop after this day (YYYY-MM-DD)")
    allow_grace: bool = False
    payment_method_id: int | None = Field(
        None, description="a saved method of yours; default: the newest usable one"
    )
    paused: bool = False
