"""Reads of lines for screens and APIs."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import TruncWeek

from . import lifecycle
from .identifiers import normalize_msisdn
from .models import Line, LineStatus, NumberPolicy, PhoneNumber


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


@dataclass(slots=True)
class _Policy:
    """The policy's periods, as lifecycle's functions read them."""

    first_topup_days: int
    grace_days: int
    suspension_days: int
    quarantine_days: int
    max_validity_days: int | None
    extension_rule: str


_POLICY_FIELDS = (
    "first_topup_days",
    "grace_days",
    "suspension_days",
    "quarantine_days",
    "max_validity_days",
    "extension_rule",
)
# Per database vendor: the statement and the converters of valid_until.
_QUICK_CHECK: dict[str, tuple[str, Any, list[Callable[..., Any]]]] = {}


def _quick_check_statement() -> tuple[str, Any, list[Callable[..., Any]]]:
    """One plain SELECT of the fields the quick check reads, built once from
    the models' metadata: compiling the ORM query for every check cost more
    CPU than the database spends running it."""
    found = _QUICK_CHECK.get(connection.vendor)
    if found is not None:
        return found
    q = connection.ops.quote_name
    line, number, policy = Line._meta, PhoneNumber._meta, NumberPolicy._meta

    def col(meta: Any, alias: str, name: str) -> str:
        return f"{alias}.{q(meta.get_field(name).column)}"

    columns = [col(line, "l", "valid_until")]
    columns += [col(policy, "p", name) for name in _POLICY_FIELDS]
    # Only names from the models' metadata go into the text; values are bound.
    sql = (
        f"SELECT {', '.join(columns)} FROM {q(line.db_table)} l"  # noqa: S608
        f" JOIN {q(number.db_table)} n ON n.{q(number.pk.column)} = {col(line, 'l', 'phone_number')}"
        f" JOIN {q(policy.db_table)} p ON p.{q(policy.pk.column)} = {col(line, 'l', 'policy')}"
        f" WHERE {col(number, 'n', 'msisdn')} = %s AND {col(line, 'l', 'status')} NOT IN (%s, %s)"
    )
    # What the ORM would apply to the column (SQLite stores naive UTC text).
    expression: Any = line.get_field("valid_until").get_col(line.db_table)
    converters = [*connection.ops.get_db_converters(expression)]
    converters += expression.get_db_converters(connection)
    _QUICK_CHECK[connection.vendor] = (sql, expression, converters)
    return sql, expression, converters


def public_line_status(number: str, now: datetime) -> PublicLineStatus | None:
    """Quick check by phone number. Raises ValidationError for input that is
    not a phone number; returns None when no line in service (activated, not
    terminated) has this number.

    The same answer as reading `live_line_for_number` and the line's
    effective status, in one statement and no model instances: anyone may
    call it, as often as the rate limit allows."""
    msisdn = normalize_msisdn(number)
    sql, expression, converters = _quick_check_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [msisdn, LineStatus.TERMINATED.value, LineStatus.INVENTORY.value])
        row = cursor.fetchone()
    if row is None:
        return None
    valid_until = row[0]
    for convert in converters:
        valid_until = convert(valid_until, expression, connection)
    if valid_until is None:
        return None
    policy = _Policy(*row[1:])
    status = lifecycle.status_at(valid_until, policy, now)
    if status == LineStatus.TERMINATED:
        return None
    seconds_left = (valid_until - now).total_seconds()
    return PublicLineStatus(
        msisdn=msisdn,
        status=status,
        valid_until=valid_until,
        # Whole days, rounded up: a line valid for 29.9 more days has 30 days left.
        days_left=max(0, math.ceil(seconds_left / 86400)),
        grace_from=lifecycle.grace_from(valid_until),
        suspended_from=lifecycle.suspended_from(valid_until, policy),
        number_lost_on=lifecycle.terminated_from(valid_until, policy),
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
