"""How a top-up was paid, in words, for templates that only hold codes
(messages rendered at send time in the recipient's language)."""

from __future__ import annotations

from django import template

from leb.receipts.labels import CHANNEL_LABELS, provider_label

register = template.Library()


@register.simple_tag
def payment_method(provider: str, channel: str = "") -> str:
    if channel in CHANNEL_LABELS:
        return str(CHANNEL_LABELS[channel])
    return provider_label(provider or "")
