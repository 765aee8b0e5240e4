"""Reads of support tickets for the back office, grouped in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, Count, IntegerField, Value, When

from .models import Ticket, TicketStatus

# Age buckets of a ticket still open, by how long ago it was written: the
# lower bound of each, in days (the last has no upper bound).
AGE_BUCKETS = (0, 1, 3, 7)


@dataclass(frozen=True)
class TicketAgeCount:
    bucket: int  # index into AGE_BUCKETS
    status: str
    count: int


def open_tickets_by_age(now: datetime) -> list[TicketAgeCount]:
    """Tickets not closed, per age bucket and status (waiting for support, or
    answered and waiting for the subscriber)."""
    # Oldest bucket first in the CASE: a ticket older than 7 days is in bucket 3.
    whens = [
        When(created_at__lte=now - timedelta(days=days), then=Value(index))
        for index, days in reversed(list(enumerate(AGE_BUCKETS)))
        if days
    ]
    rows = (
        Ticket.objects.filter(status__in=[TicketStatus.OPEN, TicketStatus.ANSWERED])
        .annotate(bucket=Case(*whens, default=Value(0), output_field=IntegerField()))
        .order_by()
        .values("bucket", "status")
        .annotate(count=Count("pk"))
        .order_by("bucket", "status")
    )
    return [TicketAgeCount(row["bucket"], row["status"], row["count"]) for row in rows]
