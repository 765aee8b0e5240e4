"""How a top-up was paid, in the subscriber's words: the one place that turns
provider codes ("sandbox", "stripe", "balance") and channels into translated
labels for receipts, history, the result page and the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

    from leb.topups.models import TopUpOrder

# Payment providers and the internal payment sources orders record in
# TopUpOrder.payment_provider.
METHOD_LABELS: dict[str, str | _StrPromise] = {
    "sandbox": _("Test payment (sandbox)"),
    "stripe": _("Card"),
    "paypal": _("PayPal"),
    "voucher": _("Voucher"),
    "balance": _("Account balance"),
    "admin": _("Added by staff"),
    "agent": _("Paid by agent"),
}
# Channels whose payment is settled outside leb's providers: an agent pays
# from its float whatever it recorded as the provider.
CHANNEL_LABELS: dict[str, str | _StrPromise] = {
    "agent": _("Paid by agent"),
}
UNKNOWN_METHOD = _("Other payment method")


def provider_label(code: str) -> str:
    """The translated name of a payment provider or source; never the code."""
    if code in METHOD_LABELS:
        return str(METHOD_LABELS[code])
    # A provider plugged in through settings names itself.
    path = (getattr(settings, "PAYMENT_PROVIDER_CLASSES", {}) or {}).get(code)
    if path:
        try:
            label = import_string(path).label
        except ImportError:
            label = ""
        if label:
            return str(label)
    return str(UNKNOWN_METHOD)


def payment_method_label(order: TopUpOrder | Any) -> str:
    """How `order` was paid, for the subscriber."""
    if order.channel in CHANNEL_LABELS:
        return str(CHANNEL_LABELS[order.channel])
    return provider_label(order.payment_provider or "")
