"""The urgency warning on the line page and the "my lines" list: one level at
a time, with the clock moved rather than waited for."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.common import clock
from leb.lines.models import Line, LineStatus

pytestmark = pytest.mark.django_db

# make_line at the fixture's `now` (1 June 2026, noon Hong Kong time) gives
# 30 days of validity: valid until 1 July, suspended from 31 July, number lost
# on 29 September at noon, so the last day to keep it is 28 September.


def _urgency(html: str) -> str:
    found = re.search(r'<div class="urgency[^"]*"[^>]*>.*?</div>', html, re.S)
    assert found is not None, "no urgency notice on the page"
    return found.group(0)


def _line_page(client: Client, line: Any, at: datetime) -> str:
    with clock.frozen(at):
        response = client.get(reverse("mylines:line", args=[line.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_line_with_plenty_of_validity_shows_no_warning(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line with 40 days left (more than the first reminder offset)
    line = make_line(owner=owner, at=now + timedelta(days=10))

    # when
    html = _line_page(owner_client, line, now)

    # then
    assert 'data-testid="urgency"' not in html


def test_soon_is_a_mild_note_with_an_ordinary_top_up_link(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line with 20 days left (within 30, not within 7)
    line = make_line(owner=owner)

    # when
    notice = _urgency(_line_page(owner_client, line, now + timedelta(days=10)))

    # then
    assert 'data-level="soon"' in notice
    assert 'role="status"' in notice
    assert "Ends soon" in notice
    assert "Validity ends on July 1, 2026." in notice
    assert "urgency-button" not in notice


def test_urgent_says_how_many_days_and_what_is_lost_with_a_top_up_now_button(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line with 5 days left
    line = make_line(owner=owner)

    # when
    html = _line_page(owner_client, line, now + timedelta(days=25))
    notice = _urgency(html)

    # then: words as well as colour, announced, with the prominent button
    assert 'data-level="urgent"' in notice
    assert 'role="alert"' in notice
    assert "Urgent" in notice
    assert "Validity ends in 5 days, on July 1, 2026." in notice
    assert "is suspended from July 31, 2026 and is lost after September 28, 2026" in notice
    assert "urgency-button" in notice
    assert "Top up now" in notice
    # and no second, ordinary top-up button beside it
    assert html.count(">Top up</a>") == html.count('href="/topup/">Top up</a>')


def test_urgent_on_the_last_day_says_today_and_the_time(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line whose validity ends in four hours
    line = make_line(owner=owner)

    # when
    notice = _urgency(_line_page(owner_client, line, now + timedelta(days=29, hours=20)))

    # then
    assert "Validity ends today, at" in notice
    assert "12:00" in notice


def test_the_top_up_now_button_opens_the_plans_of_this_very_line(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given an urgent line
    line = make_line(owner=owner)
    at = now + timedelta(days=25)
    notice = _urgency(_line_page(owner_client, line, at))
    href = re.search(r'href="([^"]+)" data-testid="urgency-action"', notice)
    assert href is not None

    # when the subscriber follows it
    with clock.frozen(at):
        response = owner_client.get(href.group(1))

    # then the web top-up shows the plans for this line, no number to retype
    assert response.status_code == 200
    assert reverse("webtopup:start") != href.group(1)
    assert line.msisdn[-4:] in response.content.decode()


def test_grace_says_what_still_works_and_the_dates(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line whose validity ended ten days ago
    line = make_line(owner=owner)

    # when
    notice = _urgency(_line_page(owner_client, line, now + timedelta(days=40)))

    # then
    assert 'data-level="grace"' in notice
    assert "Receive-only" in notice
    assert "can still receive calls and SMS, but cannot call out or use data" in notice
    assert "It is suspended from July 31, 2026." in notice
    assert "The number is lost after September 28, 2026. Top up by then to keep it." in notice
    assert "Top up now" in notice


def test_suspended_says_barred_both_ways_the_date_fee_and_forfeit(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line suspended for ten days (the policy charges HK$10 to restore
    # and forfeits the balance at termination)
    line = make_line(owner=owner)

    # when
    notice = _urgency(_line_page(owner_client, line, now + timedelta(days=70)))

    # then
    assert 'data-level="suspended"' in notice
    assert "barred both ways" in notice
    assert "Top up by September 28, 2026 to keep the number." in notice
    assert "Restoring the line costs HK$10.00, taken from the top-up." in notice
    assert "any balance left on it is forfeited" in notice
    assert "Top up now" in notice


def test_suspended_under_a_policy_without_fee_or_forfeit_says_neither(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], uk_policy: Any, now: datetime
) -> None:
    # given a UK line (no restore fee) whose policy keeps the balance
    uk_policy.forfeit_balance_at_termination = False
    uk_policy.save(update_fields=["forfeit_balance_at_termination"])
    line = make_line(owner=owner, policy=uk_policy, currency="GBP")

    # when: 180 days validity + 89 grace, then 2 of the 4 suspended days
    notice = _urgency(_line_page(owner_client, line, now + timedelta(days=271)))

    # then
    assert 'data-level="suspended"' in notice
    assert "Restoring the line costs" not in notice
    assert "forfeited" not in notice


def test_terminated_says_when_the_number_was_lost_and_what_to_do(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line whose number was lost (the sweep has not run yet)
    line = make_line(owner=owner)

    # when
    html = _line_page(owner_client, line, now + timedelta(days=125))
    notice = _urgency(html)

    # then
    assert 'data-level="terminated"' in notice
    assert "The number was lost on September 29, 2026." in notice
    assert "Contact support" in notice
    assert "Top up now" not in notice


def test_dates_are_in_the_viewers_time_zone(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given a viewer in Los Angeles: validity ends 30 June, 21:00 local, and
    # the number is lost on 28 September, 21:00 local
    session = owner_client.session
    session["tz"] = "America/Los_Angeles"
    session.save()
    line = make_line(owner=owner)

    # when
    notice = _urgency(_line_page(owner_client, line, now + timedelta(days=40)))

    # then
    assert "Validity ended on June 30, 2026." in notice
    assert "The number is lost after September 27, 2026." in notice


def test_the_list_warns_per_line_with_one_query_for_all_lines(
    owner_client: Client,
    owner: Any,
    make_line: Callable[..., Any],
    now: datetime,
    django_assert_max_num_queries: Any,
) -> None:
    # given six lines: one per level, and one with plenty of time
    at = now + timedelta(days=70)
    make_line(owner=owner, at=now + timedelta(days=64))  # soon
    make_line(owner=owner, at=now + timedelta(days=75))  # ok: 35 days left
    make_line(owner=owner, at=now + timedelta(days=45))  # urgent: 5 days left
    make_line(owner=owner, at=now + timedelta(days=30))  # grace
    make_line(owner=owner)  # suspended
    gone = make_line(owner=owner)
    Line.objects.filter(pk=gone.pk).update(
        status=LineStatus.TERMINATED, terminated_at=now + timedelta(days=60)
    )

    # when / then: the same budget as the plain list (session, user, profile,
    # lines with policy, one spare for the banner)
    with clock.frozen(at), django_assert_max_num_queries(5 + 1):
        response = owner_client.get(reverse("mylines:list"))
    html = response.content.decode()

    # then each line carries its own notice
    levels = re.findall(r'data-testid="urgency" data-level="(\w+)"', html)
    assert sorted(levels) == ["grace", "soon", "suspended", "terminated", "urgent"]
    assert html.count("Top up now") == 3


def test_outsider_sees_no_warning_for_someone_elses_line(
    outsider_client: Client, owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given the owner's urgent line
    line = make_line(owner=owner)

    # when
    with clock.frozen(now + timedelta(days=25)):
        page = outsider_client.get(reverse("mylines:line", args=[line.pk]))
        listing = outsider_client.get(reverse("mylines:list"))

    # then
    assert page.status_code == 404
    assert 'data-testid="urgency"' not in listing.content.decode()
