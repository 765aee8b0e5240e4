"""{% money %}, {% localdate %}, {% localdatetime %}, {% days_until %}, |phone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import template

from leb.common import formatting

register = template.Library()


@register.simple_tag
def money(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None or not currency:
        return ""
    return formatting.format_money(amount_minor, currency)


@register.simple_tag(takes_context=True)
def localdate(
    context: dict[str, Any], value: datetime | date | None, fmt: formatting.Format = "long"
) -> str:
    if value is None:
        return ""
    tz = formatting.user_timezone(context.get("request"))
    return formatting.format_local_date(value, tz, fmt=fmt)


@register.simple_tag(takes_context=True)
def localdatetime(
    context: dict[str, Any], value: datetime | None, fmt: formatting.Format = "medium"
) -> str:
    if value is None:
        return ""
    tz = formatting.user_timezone(context.get("request"))
    return formatting.format_local_datetime(value, tz, fmt=fmt)


@register.simple_tag
def days_until(value: datetime | None) -> int | str:
    if value is None:
        return ""
    return formatting.days_until(value)


@register.filter
def phone(value: str | None) -> str:
    """E.164 shown the international way: +85291234567 -> +852 9123 4567."""
    return formatting.format_phone(value or "")
