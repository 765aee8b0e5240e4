"""Contexts of the kinds the notifications app defines itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.urls import reverse

if TYPE_CHECKING:
    from leb.topups.models import TopUpOrder


def topup_succeeded_context(
    order: TopUpOrder, *, line: Any = None, quote: Any = None
) -> dict[str, Any]:
    """What the "top-up succeeded" message says: JSON-safe, dates as ISO
    strings, money as amount + currency, the receipt as an absolute link,
    the payment method and seller as codes that are put in words at send
    time, in the recipient's language."""
    from leb.catalog.quotes import Quote
    from leb.receipts.queries import guest_path, seller_of

    line = line if line is not None else order.line
    if order.customer_id or line.owner_id:
        path = reverse("receipts:detail", kwargs={"receipt_number": order.receipt_number})
    else:
        # Nobody can sign in to see it: the text carries the signed guest link.
        path = guest_path(order)
    quote = quote if quote is not None else Quote.from_dict(order.quote)
    seller = seller_of(order)
    return {
        "receipt_number": order.receipt_number,
        "receipt_url": settings.SITE_URL.rstrip("/") + path,
        "days_added": order.days_added if order.days_added is not None else quote.days_added,
        "plan_days": quote.validity_days,
        "payment_provider": order.payment_provider,
        "seller_kind": seller.kind,
        "seller_name": seller.name,
        "valid_until": order.valid_until_after.isoformat() if order.valid_until_after else None,
        "paid_amount": int(order.paid_amount if order.paid_amount is not None else order.price),
        "paid_currency": order.currency,
        "channel": order.channel,
        "fulfilled_at": order.fulfilled_at.isoformat() if order.fulfilled_at else None,
    }
