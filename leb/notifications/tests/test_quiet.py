from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from leb.notifications.quiet import in_quiet_hours, send_time

HK = ZoneInfo("Asia/Hong_Kong")
LONDON = ZoneInfo("Europe/London")
NIGHT: dict[str, Any] = {"quiet_start": time(22), "quiet_end": time(8)}


def hk(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=HK).astimezone(UTC)


def london(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON).astimezone(UTC)


def test_outside_quiet_hours_it_goes_at_once() -> None:
    due = hk(2026, 6, 1, 12, 0)
    assert send_time(due, tz=HK, **NIGHT) == due


def test_without_quiet_hours_it_goes_at_once() -> None:
    due = hk(2026, 6, 1, 23, 0)
    assert send_time(due, tz=HK, quiet_start=None, quiet_end=None) == due


def test_before_midnight_it_waits_until_the_next_morning() -> None:
    assert send_time(hk(2026, 6, 1, 23, 30), tz=HK, **NIGHT) == hk(2026, 6, 2, 8, 0)


def test_after_midnight_it_waits_until_the_same_morning() -> None:
    assert send_time(hk(2026, 6, 2, 3, 0), tz=HK, **NIGHT) == hk(2026, 6, 2, 8, 0)


def test_the_window_edges() -> None:
    assert in_quiet_hours(hk(2026, 6, 1, 22, 0), HK, time(22), time(8))
    assert not in_quiet_hours(hk(2026, 6, 1, 21, 59), HK, time(22), time(8))
    assert not in_quiet_hours(hk(2026, 6, 2, 8, 0), HK, time(22), time(8))


def test_a_window_that_does_not_wrap_midnight() -> None:
    # given quiet hours 13:00-15:00 (a siesta)
    siesta: dict[str, Any] = {"quiet_start": time(13), "quiet_end": time(15)}
    assert send_time(hk(2026, 6, 1, 14, 0), tz=HK, **siesta) == hk(2026, 6, 1, 15, 0)
    assert send_time(hk(2026, 6, 1, 16, 0), tz=HK, **siesta) == hk(2026, 6, 1, 16, 0)


def test_the_recipients_time_zone_decides() -> None:
    # 23:00 in Hong Kong is 15:00 in London (summer): not quiet there
    due = hk(2026, 6, 1, 23, 0)
    assert send_time(due, tz=LONDON, **NIGHT) == due


def test_london_across_the_spring_dst_change() -> None:
    # given 23:00 GMT on 28 March 2026; clocks go forward at 01:00 on the 29th
    due = london(2026, 3, 28, 23, 0)
    # then 08:00 BST is 07:00 UTC: 8 hours of UTC time, not 9
    sent = send_time(due, tz=LONDON, **NIGHT)
    assert sent == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert sent - due == timedelta(hours=8)


def test_london_across_the_autumn_dst_change() -> None:
    # given 23:00 BST on 24 October 2026; clocks go back at 02:00 on the 25th
    due = london(2026, 10, 24, 23, 0)
    sent = send_time(due, tz=LONDON, **NIGHT)
    assert sent == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    assert sent - due == timedelta(hours=10)


def test_a_quiet_end_inside_the_spring_gap_still_ends() -> None:
    # given quiet hours ending at 01:30, a time that does not exist on 29 March 2026
    sent = send_time(
        london(2026, 3, 29, 0, 30), tz=LONDON, quiet_start=time(0), quiet_end=time(1, 30)
    )
    assert sent > london(2026, 3, 29, 0, 30)
    assert not in_quiet_hours(sent, LONDON, time(0), time(1, 30))


def test_quiet_hours_never_push_past_the_deadline() -> None:
    # given due at 23:30, deadline 06:00 the next morning (quiet hours end at 08:00)
    due = hk(2026, 6, 1, 23, 30)
    deadline = hk(2026, 6, 2, 6, 0)

    # when
    sent = send_time(
        due, tz=HK, deliver_by=deadline, deadline_margin=timedelta(minutes=15), **NIGHT
    )

    # then it goes at the last moment before the deadline, inside quiet hours anyway
    assert sent == hk(2026, 6, 2, 5, 45)
    assert sent < deadline


def test_a_deadline_after_the_quiet_hours_waits_for_their_end() -> None:
    due = hk(2026, 6, 1, 23, 30)
    sent = send_time(due, tz=HK, deliver_by=hk(2026, 6, 2, 12, 0), **NIGHT)
    assert sent == hk(2026, 6, 2, 8, 0)


def test_a_deadline_closer_than_the_margin_sends_at_once() -> None:
    # given the deadline is 5 minutes away, in quiet hours
    due = hk(2026, 6, 1, 23, 30)
    sent = send_time(
        due,
        tz=HK,
        deliver_by=due + timedelta(minutes=5),
        deadline_margin=timedelta(minutes=15),
        **NIGHT,
    )
    assert sent == due
