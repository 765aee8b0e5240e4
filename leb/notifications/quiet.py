"""When may a message go out? Pure functions of the due moment, the
recipient's quiet hours and time zone, and the message's deadline."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo


def in_quiet_hours(moment: datetime, tz: tzinfo, start: time | None, end: time | None) -> bool:
    if start is None or end is None or start == end:
        return False
    local = moment.astimezone(tz).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    # The window wraps midnight, e.g. 22:00-08:00.
    return local >= start or local < end


def quiet_hours_end(moment: datetime, tz: tzinfo, start: time, end: time) -> datetime:
    """The end of the quiet window that contains `moment` (an aware UTC datetime)."""
    local = moment.astimezone(tz)
    day = local.date()
    if start > end and local.time().replace(tzinfo=None) >= start:
        day += timedelta(days=1)
    # A wall-clock time inside a DST gap resolves to a real instant after it.
    ends = datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
    return max(ends, moment)


def send_time(
    due: datetime,
    *,
    tz: tzinfo,
    quiet_start: time | None,
    quiet_end: time | None,
    deliver_by: datetime | None = None,
    deadline_margin: timedelta = timedelta(minutes=15),
) -> datetime:
    """The moment a message due at `due` may go out.

    Outside quiet hours: at once. Inside: when they end, unless that passes
    `deliver_by`; then at the last moment before the deadline (deadline minus
    the margin, never earlier than `due`): the deadline is never missed."""
    if not in_quiet_hours(due, tz, quiet_start, quiet_end):
        return due
    assert quiet_start is not None and quiet_end is not None
    ends = quiet_hours_end(due, tz, quiet_start, quiet_end)
    if deliver_by is None or ends <= deliver_by:
        return ends
    return max(due, deliver_by - deadline_margin)
