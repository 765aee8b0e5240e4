"""The reminder scan at scale: many lines, some of which a reminder fell due
for since the last scan.

Lines are seeded with set-based SQL (one INSERT ... SELECT per table over a
generated series), without owners, so each reminder is one SMS notification
to the line's own number. The previous scan is recorded as having run
LOOKBACK_MINUTES ago, as it would on a live system with the periodic job.
Every `step`-th line is due, scattered through the table, in this mix:

    share  reminder that fell due in the last 50 minutes
    25%    expiry_reminder 30 days before
    25%    expiry_reminder 7 days before
    25%    expiry_reminder 1 day before
    25%    grace_started (validity ended; stored status still active)

Lines that are not due: 90% expire 31 to 360 days from now (no reminder is
due for them yet); 10% expire 8 to 29 days from now, with their 30-day
reminder already recorded by an earlier scan.
"""

# The seeding SQL is assembled from integers and this module's constants only.
# ruff: noqa: S608

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from leb.common import clock
from leb.lines.models import Line, LineStatus, NumberPolicy, PhoneNumber
from leb.notifications.models import Notification
from leb.reminders import actions
from leb.reminders.actions import SCAN_MARK, ScanResult, scan_reminders
from leb.reminders.models import ReminderKind, ReminderOutcome, ScanMark, SentReminder

from .sweep import MOBILE_PREFIXES, _Dialect, _insert, _max_id

CURRENCY = "HKD"
POLICY_CODE = "bench-reminders"
LOOKBACK_MINUTES = 5
# Due moments are spread over this many seconds before now.
DUE_SPREAD_SECONDS = 3000
# (kind, offset days, days from the due moment to valid_until) per category j % 4.
CATEGORIES = [
    (ReminderKind.EXPIRY, 30, 30),
    (ReminderKind.EXPIRY, 7, 7),
    (ReminderKind.EXPIRY, 1, 1),
    (ReminderKind.GRACE, 0, 0),
]


@dataclass
class RemindersBenchResult:
    vendor: str
    lines: int
    due: int
    seed_seconds: float
    seconds: float = 0.0
    # Of `seconds`, the time spent in notify_many (writing the notification rows).
    notify_seconds: float = 0.0
    sent: int = 0
    skipped: int = 0
    notifications: int = 0
    batches: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    rows_sent: int = 0
    rows_notifications: int = 0
    plan: list[str] = field(default_factory=list)
    uses_valid_until_index: bool = False

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def complete(self) -> bool:
        return self.sent == self.due == self.rows_sent and self.rows_notifications == self.due


def seed(lines: int, due: int, now: datetime) -> None:
    """Insert `lines` lines of which `due` have a reminder due at `now`."""
    if not 0 < due <= lines:
        raise ValueError("need 0 < due <= lines")
    policy, _created = NumberPolicy.objects.get_or_create(
        code=POLICY_CODE,
        defaults={
            "name": "Reminder benchmark",
            "first_topup_days": 30,
            "grace_days": 30,
            "suspension_days": 60,
            "quarantine_days": 90,
            "reminder_offsets": [30, 7, 1],
        },
    )
    sql = _Dialect(connection.vendor, now)
    mod = sql.mod
    step = lines // due
    line_base, phone_base = _max_id("lines_line"), _max_id("lines_phonenumber")
    sent_base = _max_id("reminders_sentreminder")
    with_clause, series = sql.series(lines)
    is_due = f"({mod('i', step)} = 0 AND i / {step} <= {due})"
    j = f"(i / {step})"
    c = mod(j, 4)
    # Seconds since the reminder fell due: 1 .. DUE_SPREAD_SECONDS.
    ago = f"(1 + {mod(j, DUE_SPREAD_SECONDS)}) / 86400.0"
    due_offset = (
        "CASE "
        + " ".join(
            f"WHEN {c} = {index} THEN {days} - {ago}"
            for index, (_kind, _offset, days) in enumerate(CATEGORIES)
        )
        + " END"
    )
    in_window = f"({mod('i', 10)} = 7)"
    offset = (
        f"CASE WHEN {is_due} THEN {due_offset} "
        f"WHEN {in_window} THEN 8 + {mod('i', 22)} "
        f"ELSE 31 + {mod('i', 330)} END"
    )
    number = f"({phone_base} + i - 1)"
    msisdn = (
        # Room for 20,000,000 lines.
        f"'+852' || substr('{MOBILE_PREFIXES}', 2 * ({number} / 1000000) + 1, 2) || "
        f"{sql.pad(mod(number, 1000000), 6)}"
    )
    long_ago = sql.days("-400")
    statements = [
        _insert(
            PhoneNumber,
            {
                "id": f"{phone_base} + i",
                "msisdn": msisdn,
                "status": "'assigned'",
                "updated_at": sql.days("0"),
            },
            series,
        ),
        _insert(
            Line,
            {
                "id": f"{line_base} + i",
                "iccid": f"'89852991' || {sql.pad(f'{line_base} + i', 12)}",
                "currency": f"'{CURRENCY}'",
                "status": f"'{LineStatus.ACTIVE.value}'",
                "activated_at": long_ago,
                "valid_until": sql.days(offset),
                "next_transition_at": sql.days(offset),
                "created_at": long_ago,
                "policy_id": str(policy.pk),
                "phone_number_id": f"{phone_base} + i",
            },
            series,
        ),
        # What the earlier scans left: the 30-day reminder of the in-window lines.
        _insert(
            SentReminder,
            {
                "id": f"{sent_base} + i",
                "line_id": f"{line_base} + i",
                "kind": f"'{ReminderKind.EXPIRY.value}'",
                "offset_days": "30",
                "period": sql.days(offset),
                "outcome": f"'{ReminderOutcome.SENT.value}'",
                "due_at": sql.days(f"{offset} - 30"),
                "deliver_by": sql.days(offset),
                "created_at": sql.days(f"{offset} - 30"),
            },
            f"{series} WHERE {in_window} AND NOT {is_due}",
        ),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement, params in statements:
            cursor.execute(with_clause + statement, params)
        ScanMark.objects.update_or_create(
            name=SCAN_MARK,
            defaults={"scanned_until": now - timedelta(minutes=LOOKBACK_MINUTES)},
        )
    with connection.cursor() as cursor:
        if sql.postgres:
            for table in ("lines_phonenumber", "lines_line", "reminders_sentreminder"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
                cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute("ANALYZE")


class _Captured(Exception):
    pass


def scan_query(now: datetime) -> tuple[str, list[Any]]:
    """The SQL and parameters of the scan's first lines query, taken from a
    scan stopped before that statement reached the database."""
    found: list[tuple[str, list[Any]]] = []

    def stop(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith("SELECT") and 'FROM "lines_line"' in sql:
            found.append((sql, list(params or ())))
            raise _Captured
        return execute(sql, params, many, context)

    try:
        with transaction.atomic(), connection.execute_wrapper(stop):
            scan_reminders(now, batch_size=settings.REMINDERS_BATCH_SIZE)
    except _Captured:
        pass
    if not found:
        raise RuntimeError("the scan ran no lines query")
    return found[0]


def explain_scan_query(now: datetime) -> list[str]:
    sql, params = scan_query(now)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ANALYZE runs it (and takes its row locks); the rollback releases them.
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            rows = [str(row[0]) for row in cursor.fetchall()]
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            rows = [str(row[-1]) for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return rows


def run_reminders_bench(
    lines: int, due: int, *, log: Callable[[str], None] | None = None
) -> RemindersBenchResult:
    """Seed, explain the scan's lines query, time one scan, count what it wrote."""
    say = log or (lambda message: None)
    now = clock.now()
    say(f"seeding {lines} lines, {due} due, with INSERT ... SELECT")
    started = time.monotonic()
    seed(lines, due, now)
    result = RemindersBenchResult(
        vendor=connection.vendor, lines=lines, due=due, seed_seconds=time.monotonic() - started
    )
    result.plan = explain_scan_query(now)
    result.uses_valid_until_index = any("lines_line_valid_until_idx" in r for r in result.plan)
    sent_before = SentReminder.objects.filter(outcome=ReminderOutcome.SENT).count()
    say("scanning")
    connection.ensure_connection()
    spent: list[float] = []
    real_notify_many = actions.notify_many

    def timed_notify_many(requests: Any, **kwargs: Any) -> int:
        begun = time.monotonic()
        try:
            return real_notify_many(requests, **kwargs)
        finally:
            spent.append(time.monotonic() - begun)

    # Measured separately: the scan's own work and the notification rows it asks for.
    actions.notify_many = timed_notify_many
    try:
        started = time.monotonic()
        scan: ScanResult = scan_reminders(now, batch_size=settings.REMINDERS_BATCH_SIZE)
        result.seconds = time.monotonic() - started
    finally:
        actions.notify_many = real_notify_many
    result.notify_seconds = sum(spent)
    result.sent, result.skipped = scan.sent, scan.skipped
    result.notifications, result.batches = scan.notifications, scan.batches
    result.by_kind = dict(scan.by_kind)
    result.rows_sent = (
        SentReminder.objects.filter(outcome=ReminderOutcome.SENT).count() - sent_before
    )
    result.rows_notifications = Notification.objects.filter(
        kind__in=[kind.value for kind in ReminderKind]
    ).count()
    return result


def run_verbose(lines: int, due: int) -> RemindersBenchResult:
    """run_reminders_bench for `leb bench reminders`, which calls it in a child process."""
    return run_reminders_bench(lines, due, log=lambda message: print(message, flush=True))
