"""Messages other apps' events put in the outbox, in the same transaction as
the event (connected when the app loads)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leb.topups.signals import order_fulfilled

from .actions import notify
from .kinds import topup_succeeded_context


def queue_topup_succeeded(
    sender: Any, *, order: Any, line: Any, quote: Any, now: datetime, **kwargs: Any
) -> None:
    notify(
        kind="topup_succeeded",
        context=topup_succeeded_context(order, line=line, quote=quote),
        dedupe_key=f"order:{order.public_id}",
        line=line,
        now=now,
    )


def connect() -> None:
    order_fulfilled.connect(queue_topup_succeeded, dispatch_uid="notifications.topup_succeeded")
