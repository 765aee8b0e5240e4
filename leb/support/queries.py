"""Reads of support tickets for the back office, grouped in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from leb.topups.models import OrderStatus, TopUpOrder

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


def disputable_orders(ticket: Ticket) -> QuerySet[TopUpOrder]:
    """The completed top-ups of the ticket's subscriber that may be disputed
    on it: the order it is about, those of its line, and those the signed-in
    subscriber bought or whose line they own. The escalation checks the same."""
    mine = Q(pk__in=[])
    if ticket.order_id is not None:
        mine |= Q(pk=ticket.order_id)
    if ticket.line_id is not None:
        mine |= Q(line_id=ticket.line_id)
    if ticket.user_id is not None:
        mine |= Q(customer_id=ticket.user_id) | Q(line__owner_id=ticket.user_id)
    return (
        TopUpOrder.objects.filter(mine, status=OrderStatus.FULFILLED)
        .select_related("line__phone_number")
        .order_by("-fulfilled_at", "-pk")
    )
