"""Helpers for the auto-keep tests: sandbox cards, notifications written."""

from __future__ import annotations

from typing import Any

# Sandbox test cards.
OK_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
NO_FUNDS_CARD = "4000000000009995"
SECURE_CARD = "4000002500003155"


def notified(kind: str, **filters: Any) -> list[str]:
    """The dedupe keys of the notifications of `kind` written so far."""
    from leb.notifications.models import Notification

    return sorted(
        set(Notification.objects.filter(kind=kind, **filters).values_list("dedupe_key", flat=True))
    )
