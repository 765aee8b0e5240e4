"""Shapes every API router shares: money with its display form, and the
RFC 9457 problem document."""

from __future__ import annotations

from ninja import Field, Schema

from .formatting import format_money


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
