"""Reads of top-up orders for the back office: totals grouped in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate

from .models import OrderStatus, TopUpOrder


@dataclass(frozen=True)
class TopUpTotal:
    """Completed top-ups of one group in one currency: how many, and what
    subscribers paid for them in minor units."""

    currency: str
    count: int
    amount: int


@dataclass(frozen=True)
class DayTotal(TopUpTotal):
    day: date


@dataclass(frozen=True)
class ChannelTotal(TopUpTotal):
    channel: str


def _completed(since: datetime, until: datetime) -> QuerySet[TopUpOrder]:
    # Refunded top-ups leave the figures: their money went back.
    return TopUpOrder.objects.filter(
        status=OrderStatus.FULFILLED, fulfilled_at__gte=since, fulfilled_at__lt=until
    ).order_by()


def completed_by_day(since: datetime, until: datetime, tz: tzinfo) -> list[DayTotal]:
    """Per calendar day in `tz` (by completion time) and currency."""
    rows = (
        _completed(since, until)
        .annotate(day=TruncDate("fulfilled_at", tzinfo=tz))
        .values("day", "currency")
        .annotate(count=Count("*"), amount=Sum("price"))
        .order_by("day", "currency")
    )
    return [
        DayTotal(row["currency"], row["count"], int(row["amount"] or 0), day=row["day"])
        for row in rows
    ]


def completed_by_channel(since: datetime, until: datetime) -> list[ChannelTotal]:
    """Per sales channel and currency."""
    rows = (
        _completed(since, until)
        .values("channel", "currency")
        .annotate(count=Count("*"), amount=Sum("price"))
        .order_by("channel", "currency")
    )
    return [
        ChannelTotal(row["currency"], row["count"], int(row["amount"] or 0), channel=row["channel"])
        for row in rows
    ]
