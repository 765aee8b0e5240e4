"""The secret per-line calendar feed and the button that replaces its link."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from icalendar import Calendar

from leb import clock
from leb.conftest import topup
from leb.lines.actions import do_set_line_owner
from leb.reminders.calendar import feed_path
from leb.reminders.models import CalendarFeed

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
    # and the day the number is lost (30 grace + 60 suspended days later)
    loss = events[f"line-{line.pk}-loss"]
    assert loss.decoded("DTSTART") == date(2026, 9, 29)
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
