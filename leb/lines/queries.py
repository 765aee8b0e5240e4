"""Reads of lines for screens and APIs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from django.db.models import Count, Q
from django.db.models.functions import TruncWeek

from . import lifecycle
from .identifiers import normalize_msisdn
from .models import Line, LineStatus


@dataclass(frozen=True)
class PublicLineStatus:
    """What anyone who knows a number may see: no balance, no owner."""

    msisdn: str
    status: str
    valid_until: datetime | None
    days_left: int
    # The last moments before each consequence, if nobody tops up.
    grace_from: datetime | None
    suspended_from: datetime | None
    number_lost_on: datetime | None

    @property
    def can_top_up(self) -> bool:
        return self.status in (LineStatus.ACTIVE, LineStatus.GRACE, LineStatus.SUSPENDED)


def live_line_for_number(msisdn: str) -> Line | None:
    """The line that currently holds the number (not a terminated one)."""
    return (
        Line.objects.select_related("policy", "phone_number")
        .filter(phone_number__msisdn=msisdn)
        .exclude(status=LineStatus.TERMINATED)
        .first()
    )


def public_line_status(number: str, now: datetime) -> PublicLineStatus | None:
    """Quick check by phone number. Raises ValidationError for input that is
    not a phone number; returns None when no live line has this number."""
    msisdn = normalize_msisdn(number)
    line = live_line_for_number(msisdn)
    if line is None or line.status == LineStatus.INVENTORY:
        return None
    status = lifecycle.effective_status(line, now)
    if status == LineStatus.TERMINATED or line.valid_until is None:
        return None
    valid_until = line.valid_until
    seconds_left = (valid_until - now).total_seconds()
    return PublicLineStatus(
        msisdn=msisdn,
        status=status,
        valid_until=valid_until,
        # Whole days, rounded up: a line valid for 29.9 more days has 30 days left.
        days_left=max(0, math.ceil(seconds_left / 86400)),
        grace_from=lifecycle.grace_from(valid_until),
        suspended_from=lifecycle.suspended_from(valid_until, line.policy),
        number_lost_on=lifecycle.terminated_from(valid_until, line.policy),
    )


# --- Back-office figures: each is one GROUP BY in the database ------------------


def count_by_status() -> dict[str, int]:
    """Lines per stored status (what the sweep last wrote), every status present."""
    counts = {status.value: 0 for status in LineStatus}
    for row in Line.objects.order_by().values("status").annotate(count=Count("pk")):
        counts[row["status"]] = row["count"]
    return counts


def count_expiring(now: datetime, horizons: Sequence[int]) -> dict[int, int]:
    """Lines whose validity ends within each horizon (days from `now`), in one
    query over the partial valid_until index."""
    horizons = sorted(set(horizons))
    if not horizons:
        return {}
    ends = {days: now + timedelta(days=days) for days in horizons}
    totals = (
        Line.objects.exclude(status=LineStatus.TERMINATED)
        .filter(valid_until__gte=now, valid_until__lt=ends[horizons[-1]])
        .aggregate(
            **{f"d{days}": Count("pk", filter=Q(valid_until__lt=end)) for days, end in ends.items()}
        )
    )
    return {days: int(totals[f"d{days}"] or 0) for days in horizons}


def count_terminated_by_week(since: datetime, until: datetime, tz: tzinfo) -> dict[date, int]:
    """Lines terminated (number lost) per week starting Monday in `tz`."""
    rows = (
        Line.objects.filter(
            status=LineStatus.TERMINATED, terminated_at__gte=since, terminated_at__lt=until
        )
        .annotate(week=TruncWeek("terminated_at", tzinfo=tz))
        .order_by()
        .values("week")
        .annotate(count=Count("pk"))
    )
    found: dict[date, int] = {}
    for row in rows:
        week = row["week"]
        day = week.date() if isinstance(week, datetime) else week
        found[day] = found.get(day, 0) + row["count"]
    return found
