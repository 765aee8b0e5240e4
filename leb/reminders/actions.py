"""Every write of the reminders app: the periodic reminder scan and the
calendar link rotation.

The scan finds, per group of policies with the same timers and per reminder,
the lines whose valid_until lies in the range that makes that reminder their
current one (lines_line_valid_until_idx), minus the ones already recorded for
that validity period (an anti-join on the unique SentReminder key). Each batch
is one transaction: the SentReminder rows and the notifications commit or
roll back together, so nothing is sent twice and nothing is lost."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from leb.catalog.models import Channel, Plan
from leb.common import clock
from leb.common.transactions import one_transaction
from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus, NumberPolicy
from leb.notifications.actions import LineInfo, NotifyRequest, notify_many

from . import schedule
from .models import CalendarFeed, ReminderOutcome, ScanMark, SentReminder

logger = logging.getLogger(__name__)

SCAN_MARK = "reminders"
DAY = timedelta(days=1)


@dataclass
class ScanResult:
    sent: int = 0
    skipped: int = 0
    notifications: int = 0
    batches: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def _since(now: datetime) -> datetime | None:
    """The due time before which reminders were already looked at, or None
    to look at whole windows (first scan, or a clock set back)."""
    mark = ScanMark.objects.filter(name=SCAN_MARK).first()
    if mark is None or mark.scanned_until > now:
        return None
    return mark.scanned_until - timedelta(minutes=settings.REMINDERS_OVERLAP_MINUTES)


def _advance_mark(now: datetime) -> None:
    if not ScanMark.objects.filter(name=SCAN_MARK, scanned_until__lt=now).update(scanned_until=now):
        ScanMark.objects.bulk_create(
            [ScanMark(name=SCAN_MARK, scanned_until=now)], ignore_conflicts=True
        )


def scan_reminders(now: datetime | None = None, *, batch_size: int = 1000) -> ScanResult:
    """Send every reminder that is due at `now` and not sent yet: at most one
    per line, the most urgent; earlier ones that fell due unseen (the job was
    not running) are recorded as skipped. Safe to run on several workers at
    once and to re-run."""
    now = now or clock.now()
    result = ScanResult()
    since = _since(now)
    groups: dict[tuple[object, ...], list[NumberPolicy]] = {}
    for policy in NumberPolicy.objects.order_by("pk"):
        groups.setdefault(schedule.signature(policy), []).append(policy)
    scan = _Scan(now=now, since=since, batch_size=batch_size, result=result)
    for policies in groups.values():
        by_id = {policy.pk: policy for policy in policies}
        for window in schedule.windows(policies[0], now, since):
            cursor: tuple[datetime, int] | None = None
            while True:
                cursor = scan.batch(by_id, window, cursor)
                if cursor is None:
                    break
    _advance_mark(now)
    if result.sent or result.skipped:
        logger.info(
            "reminders: %d sent, %d skipped, %d notifications %s",
            result.sent,
            result.skipped,
            result.notifications,
            result.by_kind,
        )
    return result


def topup_url() -> str:
    return settings.SITE_URL.rstrip("/") + "/topup/"


def _not_sent() -> str:
    """The anti-join on the unique SentReminder key, probed line by line
    through its index. On PostgreSQL, OFFSET 0 keeps the planner from turning
    it into a merge or hash anti-join over the whole table, which it picks
    when the statistics lag behind a table the scan itself is filling."""
    sent = SentReminder._meta.db_table
    line = Line._meta.db_table
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""
    return (
        f"NOT EXISTS (SELECT 1 FROM {sent} s WHERE s.line_id = {line}.id "  # noqa: S608
        f"AND s.kind = %s AND s.offset_days = %s AND s.period = {line}.valid_until{fence})"
    )


class DueLine(NamedTuple):
    """What the scan needs of a line it found due."""

    pk: int
    valid_until: datetime
    owner_id: int | None
    currency: str
    policy: NumberPolicy
    msisdn: str


@dataclass
class _Scan:
    now: datetime
    since: datetime | None
    batch_size: int
    result: ScanResult
    _plans: dict[str, Plan | None] = field(default_factory=dict)
    _topup_url: str = field(default_factory=topup_url)

    def batch(
        self,
        policies: dict[int, NumberPolicy],
        window: schedule.Window,
        cursor: tuple[datetime, int] | None,
    ) -> tuple[datetime, int] | None:
        """One batch in one transaction; the keyset cursor to go on from, or None."""
        milestone = window.milestone
        with transaction.atomic():
            query = (
                Line.objects.filter(
                    policy_id__in=list(policies),
                    valid_until__gt=window.low,
                    valid_until__lte=window.high,
                )
                .exclude(status=LineStatus.TERMINATED)
                .extra(where=[_not_sent()], params=[milestone.kind, milestone.offset_days])  # noqa: S610
            )
            if cursor is not None:
                # The >= bound lets the index range start at the cursor.
                query = query.filter(valid_until__gte=cursor[0]).filter(
                    Q(valid_until__gt=cursor[0]) | Q(pk__gt=cursor[1])
                )
            query = query.order_by("valid_until", "pk")
            if connection.features.has_select_for_update_skip_locked:
                # Lines being topped up right now are left for the next run;
                # two scans at once split the lines instead of waiting.
                query = query.select_for_update(skip_locked=True, of=("self",))
            rows = query.values_list(
                "pk", "valid_until", "owner_id", "currency", "policy_id", "phone_number__msisdn"
            )
            lines = [
                DueLine(pk, valid_until, owner_id, currency, policies[policy_id], msisdn or "")
                for pk, valid_until, owner_id, currency, policy_id, msisdn in rows[
                    : self.batch_size
                ]
                if valid_until is not None
            ]
            if not lines:
                return None
            self._write(lines, window)
            self.result.batches += 1
        if len(lines) < self.batch_size:
            return None
        return lines[-1].valid_until, lines[-1].pk

    def _write(self, lines: list[DueLine], window: schedule.Window) -> None:
        milestone = window.milestone
        inserted = set(_record(lines, milestone, ReminderOutcome.SENT, self.now))
        if not inserted:
            return
        fresh = [line for line in lines if line.pk in inserted]
        self._skip_earlier(fresh, window)
        requests = [self._request(line, milestone) for line in fresh]
        # The batch read each line (locked): notify_many need not read it again.
        known = {
            line.pk: LineInfo(line.pk, line.owner_id, line.msisdn, line.valid_until)
            for line in fresh
        }
        self.result.notifications += notify_many(requests, known_lines=known, now=self.now)
        self.result.sent += len(fresh)
        kind = str(milestone.kind)
        self.result.by_kind[kind] = self.result.by_kind.get(kind, 0) + len(fresh)

    def _skip_earlier(self, lines: list[DueLine], window: schedule.Window) -> None:
        """Record as skipped the reminders of the same period that fell due
        since the last scan but were overtaken by this more urgent one."""
        for earlier in window.earlier:
            overtaken = [
                line
                for line in lines
                if self.since is None or earlier.due(line.valid_until) > self.since
            ]
            if overtaken:
                self.result.skipped += len(
                    _record(overtaken, earlier, ReminderOutcome.SKIPPED, self.now)
                )

    def _cheapest_plan(self, currency: str) -> Plan | None:
        if currency not in self._plans:
            on_sale = [
                plan
                for plan in Plan.objects.filter(is_active=True, currency=currency).order_by(
                    "price", "sort_order", "pk"
                )
                if Channel.WEB in plan.channels
                and (plan.active_from is None or plan.active_from <= self.now)
                and (plan.active_until is None or self.now < plan.active_until)
            ]
            self._plans[currency] = on_sale[0] if on_sale else None
        return self._plans[currency]

    def _request(self, line: DueLine, milestone: schedule.Milestone) -> NotifyRequest:
        return NotifyRequest(
            kind=milestone.kind,
            context=reminder_context(
                line, milestone, self.now, self._cheapest_plan(line.currency), self._topup_url
            ),
            dedupe_key=(
                f"reminder:{line.pk}:{milestone.kind}:{milestone.offset_days}:"
                f"{line.valid_until.isoformat()}"
            ),
            user_id=line.owner_id,
            line_id=line.pk,
            deliver_by=milestone.deliver_by(line.valid_until),
            skip_if_validity_changed=True,
        )


def reminder_context(
    line: DueLine,
    milestone: schedule.Milestone,
    now: datetime,
    plan: Plan | None,
    url: str | None = None,
) -> dict[str, Any]:
    """What the message templates of a reminder get (JSON only: dates as ISO
    strings under *_until / *_at keys, money as *_amount + *_currency)."""
    valid_until = line.valid_until
    policy = line.policy
    deadline = milestone.deliver_by(valid_until)
    context: dict[str, Any] = {
        "offset_days": milestone.offset_days,
        "valid_until": valid_until.isoformat(),
        "suspended_at": lifecycle.suspended_from(valid_until, policy).isoformat(),
        "lost_at": lifecycle.terminated_from(valid_until, policy).isoformat(),
        "days_left": max(0, math.ceil((deadline - now) / DAY)),
        "topup_url": url or topup_url(),
        "plan_price_amount": plan.price if plan else None,
        "plan_price_currency": plan.currency if plan else None,
        "plan_validity_days": plan.validity_days if plan else None,
        "restore_fee_amount": policy.restore_fee or None,
        "restore_fee_currency": line.currency if policy.restore_fee else None,
    }
    return context


_COLUMNS = (
    "line_id",
    "kind",
    "offset_days",
    "period",
    "outcome",
    "due_at",
    "deliver_by",
    "created_at",
)


def _record(
    lines: Sequence[DueLine], milestone: schedule.Milestone, outcome: str, now: datetime
) -> list[int]:
    """Record `milestone` for each line's current period, leaving out any
    already recorded (the unique key); return the ids of the lines recorded now.

    PostgreSQL computes the rows from the (locked) lines themselves, with the
    ids as one array parameter: a short statement whatever the batch size.
    SQLite, in-process, gets a VALUES list."""
    if not lines:
        return []
    ops = connection.ops
    table = ops.quote_name(SentReminder._meta.db_table)
    columns = ", ".join(ops.quote_name(name) for name in _COLUMNS)
    tail = " ON CONFLICT DO NOTHING RETURNING line_id"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            params: list[Any] = [
                milestone.kind,
                milestone.offset_days,
                outcome,
                milestone.shift,
                milestone.useful_for,
                now,
                [line.pk for line in lines],
            ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608
                "SELECT id, %s, %s, valid_until, %s, valid_until + %s, valid_until + %s, %s "
                f"FROM {ops.quote_name(Line._meta.db_table)} WHERE id = ANY(%s::bigint[])" + tail,
                params,
            )
            return [int(row[0]) for row in cursor.fetchall()]
        adapt = ops.adapt_datetimefield_value
        inserted: list[int] = []
        # 8 parameters a row: stay under SQLite's parameter limit.
        for start in range(0, len(lines), 1000):
            chunk = lines[start : start + 1000]
            values_params: list[Any] = []
            for line in chunk:
                values_params += [
                    line.pk,
                    milestone.kind,
                    milestone.offset_days,
                    adapt(line.valid_until),
                    outcome,
                    adapt(milestone.due(line.valid_until)),
                    adapt(milestone.deliver_by(line.valid_until)),
                    adapt(now),
                ]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}{tail}", values_params)  # noqa: S608
            inserted += [int(row[0]) for row in cursor.fetchall()]
    return inserted


# --- Calendar links ---------------------------------------------------------------------


@one_transaction
def do_rotate_calendar_feed(line: Line, *, user: Any, now: datetime | None = None) -> CalendarFeed:
    """A new secret calendar link for the line; the previous one stops working.
    The caller has checked that `user` owns the line."""
    now = now or clock.now()
    feed, _created = CalendarFeed.objects.select_for_update().get_or_create(line=line)
    feed.rotation += 1
    feed.rotated_at = now
    feed.rotated_by = user
    feed.save(update_fields=["rotation", "rotated_at", "rotated_by"])
    return feed
