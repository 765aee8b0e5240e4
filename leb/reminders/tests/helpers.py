from __future__ import annotations

from typing import Any

from leb.notifications.models import Notification
from leb.reminders.models import SentReminder


def recorded(line: Any) -> list[tuple[str, int, str]]:
    """(kind, offset, outcome) of the line's reminder rows, in the order written."""
    return list(
        SentReminder.objects.filter(line=line)
        .order_by("pk")
        .values_list("kind", "offset_days", "outcome")
    )


def messages(line: Any) -> list[Notification]:
    return list(Notification.objects.filter(line=line).order_by("pk"))
