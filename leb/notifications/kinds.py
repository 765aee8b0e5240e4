"""Contexts of the kinds the notifications app defines itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.urls import reverse

if TYPE_CHECKING:
    from leb.topups.models import TopUpOrder


def topup_succeeded_context(order: TopUpOrder) -> dict[str, Any]:
    """What the "top-up succeeded" message says: JSON-safe, dates as ISO
    strings, money as amount + currency, the receipt as an absolute link."""
    path = reverse("receipts:detail", kwargs={"receipt_number": order.receipt_number})
    return {
        "receipt_number": order.receipt_number,
        "receipt_url": settings.SITE_URL.rstrip("/") + path,
        "valid_until": order.valid_until_after.isoformat() if order.valid_until_after else None,
        "paid_amount": int(order.paid_amount if order.paid_amount is not None else order.price),
        "paid_currency": order.currency,
        "channel": order.channel,
        "fulfilled_at": order.fulfilled_at.isoformat() if order.fulfilled_at else None,
    }
