"""The secret per-line calendar feed and the button that replaces its link."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from icalendar import Calendar

from leb.common import clock
from leb.lines import lifecycle
from leb.lines.actions import do_set_line_owner
from leb.reminders.calendar import feed_path
from leb.reminders.models import CalendarFeed
from leb.testing import topup

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(now: datetime, monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(clock, "now", lambda: now)
    return now


def _events(response: Any) -> dict[str, Any]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    return {str(event["UID"]).split("@")[0]: event for event in calendar.walk("VEVENT")}


def test_the_feed_shows_expiry_with_alarms_and_the_last_day_to_keep_the_number(
    make_line: Any, owner: Any, frozen: datetime
) -> None:
    # given an owned line valid until 1 July 2026, 12:00 Hong Kong time
    line = make_line(owner=owner)
    path = feed_path(line)
    assert path is not None

    # when a calendar app (no session) fetches the feed
    events = _events(Client().get(path))

    # then: an all-day event on the expiry day with alarms 30, 7 and 1 days before
    expiry = events[f"line-{line.pk}-expiry"]
    assert expiry.decoded("DTSTART") == date(2026, 7, 1)
    assert expiry.decoded("DTEND") == date(2026, 7, 2)
    assert line.msisdn[-4:] in str(expiry["SUMMARY"])
    triggers = sorted(alarm.decoded("TRIGGER") for alarm in expiry.walk("VALARM"))
    assert triggers == [
        timedelta(days=-30, hours=9),
        timedelta(days=-7, hours=9),
        timedelta(days=-1, hours=9),
    ]
    # and the last day to keep the number: the day before it is lost (30 grace
    # + 60 suspended days later, 29 September at noon Hong Kong time)
    loss = events[f"line-{line.pk}-loss"]
    assert loss.decoded("DTSTART") == date(2026, 9, 28)
    assert len(loss.walk("VALARM")) == 2


def test_a_top_up_moves_the_dates_and_bumps_sequence_under_the_same_uid(
    make_line: Any, owner: Any, hkd_plan: Any, frozen: datetime
) -> None:
    # given the feed as the calendar app last saw it
    line = make_line(owner=owner)
    path = feed_path(line)
    assert path is not None
    before = _events(Client().get(path))[f"line-{line.pk}-expiry"]

    # when the line is topped up (180 days more)
    topup(line, hkd_plan, now=frozen + timedelta(hours=1))
    after = _events(Client().get(path))[f"line-{line.pk}-expiry"]

    # then the same event has moved, with a higher SEQUENCE and a newer LAST-MODIFIED
    assert after["UID"] == before["UID"]
    assert after.decoded("DTSTART") == date(2026, 12, 28)
    assert after.decoded("SEQUENCE") > before.decoded("SEQUENCE")
    assert after.decoded("LAST-MODIFIED") > before.decoded("LAST-MODIFIED")


def test_the_owners_language_is_used(make_line: Any, owner: Any, frozen: datetime) -> None:
    # given an owner reading leb in Traditional Chinese
    owner.profile.language = "zh-hant"
    owner.profile.save(update_fields=["language"])
    line = make_line(owner=owner)

    # when
    calendar = Calendar.from_ical(Client().get(feed_path(line)).content)  # type: ignore[arg-type]

    # then the description's date is written the Hong Kong way
    [expiry, _loss] = calendar.walk("VEVENT")
    assert "2026年7月1日" in str(expiry["DESCRIPTION"])


def test_wrong_or_rotated_links_are_not_found(
    make_line: Any, owner: Any, owner_client: Client, frozen: datetime
) -> None:
    # given the owner's current link
    line = make_line(owner=owner)
    old = feed_path(line)
    assert old is not None

    # when they make a new link
    response = owner_client.post(reverse("reminders:calendar_rotate", args=[line.pk]))

    # then the old one is gone and the new one works
    assert response.status_code == 302
    assert response["Location"] == reverse("mylines:line", args=[line.pk])
    new = feed_path(line)
    assert new is not None and new != old
    assert Client().get(old).status_code == 404
    assert Client().get(new).status_code == 200
    assert CalendarFeed.objects.get(line=line).rotation == 1
    # and a made-up token for the same line is not found either
    assert Client().get(f"/calendar/{line.pk}/{'0' * 40}.ics").status_code == 404
    assert Client().get(f"/calendar/{line.pk + 1000}/{'0' * 40}.ics").status_code == 404


def test_a_new_owner_invalidates_the_old_owners_link(
    make_line: Any, owner: Any, outsider: Any, frozen: datetime
) -> None:
    # given the first owner's link
    line = make_line(owner=owner)
    old = feed_path(line)
    assert old is not None

    # when the line passes to someone else, then to nobody
    do_set_line_owner(line, outsider, actor="test", now=frozen)
    line.refresh_from_db()
    new = feed_path(line)
    do_set_line_owner(line, None, actor="test", now=frozen)
    line.refresh_from_db()

    # then neither link opens any more, and an ownerless line has none
    assert new is not None and new != old
    assert Client().get(old).status_code == 404
    assert Client().get(new).status_code == 404
    assert feed_path(line) is None


def test_the_line_page_shows_the_link_with_copy_subscribe_and_revoke(
    make_line: Any, owner: Any, owner_client: Client, frozen: datetime
) -> None:
    # given
    line = make_line(owner=owner)

    # when
    response = owner_client.get(reverse("mylines:line", args=[line.pk]))

    # then
    page = response.content.decode()
    path = feed_path(line)
    assert response.status_code == 200
    assert f"http://127.0.0.1:8000{path}" in page
    assert f"webcal://127.0.0.1:8000{path}" in page
    assert reverse("reminders:calendar_rotate", args=[line.pk]) in page
    assert "csrfmiddlewaretoken" in page
    assert "style=" not in page.split('aria-labelledby="calendar-title"')[1]


@pytest.mark.parametrize("who", ["outsider", "anonymous"])
def test_outsiders_cannot_rotate_someone_elses_link(
    make_line: Any,
    owner: Any,
    outsider_client: Client,
    anonymous: Client,
    who: str,
    frozen: datetime,
) -> None:
    # given the owner's link
    line = make_line(owner=owner)
    before = feed_path(line)
    client = outsider_client if who == "outsider" else anonymous
    url = reverse("reminders:calendar_rotate", args=[line.pk])

    # when someone else tries to replace it
    posted = client.post(url)
    fetched = client.get(url)

    # then they are refused and the link still works
    if who == "outsider":
        assert posted.status_code == 404
    else:
        assert posted.status_code == 302 and "/account/login/" in posted["Location"]
    assert fetched.status_code == 405
    assert feed_path(line) == before
    assert not CalendarFeed.objects.exists()


def test_rotating_needs_the_csrf_token(make_line: Any, owner: Any, frozen: datetime) -> None:
    # given the owner in a browser that enforces CSRF checks
    line = make_line(owner=owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)

    # when a forged form posts without the token
    response = client.post(reverse("reminders:calendar_rotate", args=[line.pk]))

    # then nothing changes
    assert response.status_code == 403
    assert not CalendarFeed.objects.exists()


def test_the_feed_of_a_line_in_inventory_or_terminated_has_no_events(
    make_line: Any, owner: Any, frozen: datetime
) -> None:
    # given a line not activated yet
    line = make_line(owner=owner, activate=False)

    # when
    calendar = Calendar.from_ical(Client().get(feed_path(line)).content)  # type: ignore[arg-type]

    # then
    assert calendar.walk("VEVENT") == []


def _loss_day_for(line: Any, owner: Any, zone: str) -> date:
    owner.profile.time_zone = zone
    owner.profile.save(update_fields=["time_zone"])
    events = _events(Client().get(feed_path(line)))  # type: ignore[arg-type]
    day = events[f"line-{line.pk}-loss"].decoded("DTSTART")
    assert isinstance(day, date)
    return day


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # Loss at 2026-09-28 20:00 UTC: already 29 September in Hong Kong...
        ("Asia/Hong_Kong", date(2026, 9, 28)),
        # ...21:00 on the 28th in London, 13:00 on the 28th in Los Angeles.
        ("Europe/London", date(2026, 9, 27)),
        ("America/Los_Angeles", date(2026, 9, 27)),
    ],
)
def test_the_last_day_to_keep_is_a_local_day_in_the_owners_time_zone(
    make_line: Any, owner: Any, now: datetime, zone: str, expected: date
) -> None:
    # given a line whose number is lost at 20:00 UTC on 28 September
    line = make_line(owner=owner)
    line.valid_until = datetime(2026, 6, 30, 20, 0, tzinfo=UTC)
    line.save(update_fields=["valid_until"])

    # when the owner in `zone` fetches the feed
    with clock.frozen(now):
        day = _loss_day_for(line, owner, zone)

    # then the event is on the day the line page names as the last to top up
    assert day == expected
    assert day == lifecycle.last_keep_day(line.valid_until, line.policy, ZoneInfo(zone))


@pytest.mark.parametrize(
    ("lost_at", "expected"),
    [
        # Clocks go forward at 01:00 UTC on 28 March 2027: 23:30 UTC that day
        # is 00:30 BST on the 29th, so keep until the 28th (UTC would say 27th).
        (datetime(2027, 3, 28, 23, 30, tzinfo=UTC), date(2027, 3, 28)),
        # Clocks go back at 01:00 UTC on 25 October 2026: 23:30 UTC on the 24th
        # is 00:30 BST on the 25th, so keep until the 24th (UTC would say 23rd).
        (datetime(2026, 10, 24, 23, 30, tzinfo=UTC), date(2026, 10, 24)),
        # 00:30 UTC on the 25th is 01:30 BST, the first pass through that hour.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), date(2026, 10, 24)),
        # 23:30 UTC on the 25th is 23:30 GMT, after the change: still the 25th.
        (datetime(2026, 10, 25, 23, 30, tzinfo=UTC), date(2026, 10, 24)),
    ],
)
def test_the_last_day_to_keep_follows_london_across_a_clock_change(
    make_line: Any, owner: Any, now: datetime, lost_at: datetime, expected: date
) -> None:
    # given a line whose number is lost near local midnight around a DST change
    line = make_line(owner=owner)
    policy = line.policy
    line.valid_until = lost_at - timedelta(days=policy.grace_days + policy.suspension_days)
    line.save(update_fields=["valid_until"])

    # when a London owner fetches the feed
    with clock.frozen(now):
        day = _loss_day_for(line, owner, "Europe/London")

    # then the event is the day before the local day of loss
    assert day == expected
