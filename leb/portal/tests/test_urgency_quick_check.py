"""The home quick check shows how urgent a number is, never its balance or
owner, with a top-up link for that very line."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from leb.common import clock

pytestmark = pytest.mark.django_db


def _check(number: str, at: datetime, language: str = "en") -> str:
    client = Client(REMOTE_ADDR="203.0.113.50")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    with clock.frozen(at):
        response = client.post("/", {"number": number})
    assert response.status_code == 200
    return response.content.decode()


def _notice(html: str) -> str:
    found = re.search(r'<div class="urgency[^"]*"[^>]*>.*?</div>', html, re.S)
    assert found is not None, "no urgency notice"
    return found.group(0)


def test_an_urgent_number_gets_a_warning_and_a_top_up_now_button_for_that_line(
    make_line: Callable[..., Any], owner: Any, hkd_plan: Any, now: datetime
) -> None:
    # given an owned line with 5 days left
    line = make_line(owner=owner)
    at = now + timedelta(days=25)

    # when anyone checks the number
    html = _check(line.msisdn, at)
    notice = _notice(html)

    # then the warning, in words, with the button to this line's plans
    assert 'data-level="urgent"' in notice
    assert 'role="alert"' in notice
    assert "Validity ends in 5 days, on July 1, 2026." in notice
    href = re.search(r'href="([^"]+)" data-testid="urgency-action"', notice)
    assert href is not None
    assert href.group(1).startswith("/topup/") and href.group(1).endswith("/plans/")
    # and still nothing private
    assert "owner@example.com" not in html
    assert "balance" not in html.lower()

    # and the button opens the plans of that line
    with clock.frozen(at):
        plans = Client().get(href.group(1))
    assert plans.status_code == 200


def test_a_number_with_time_left_gets_a_mild_note_and_the_ordinary_button(
    make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line with 20 days left
    line = make_line()

    # when
    html = _check(line.msisdn, now + timedelta(days=10))

    # then
    notice = _notice(html)
    assert 'data-level="soon"' in notice
    assert "urgency-button" not in notice
    assert re.search(r'<a class="button" href="/topup/[^"]+/plans/">Top up</a>', html)


def test_a_suspended_number_says_what_is_lost_and_by_when(
    make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line suspended for ten days
    line = make_line()

    # when
    notice = _notice(_check(line.msisdn, now + timedelta(days=70)))

    # then
    assert 'data-level="suspended"' in notice
    assert "barred both ways" in notice
    assert "Top up by September 28, 2026 to keep the number." in notice
    assert "Restoring the line costs HK$10.00, taken from the top-up." in notice


def test_the_notice_follows_the_language(make_line: Callable[..., Any], now: datetime) -> None:
    # given a line in grace
    line = make_line()

    # when checked in Traditional Chinese
    html = _check(line.msisdn, now + timedelta(days=40), language="zh-hant")

    # then the page and the notice are in that language (dates the Hong Kong way)
    assert '<html lang="zh-hant">' in html
    notice = _notice(html)
    assert 'data-level="grace"' in notice
    assert "2026年9月28日" in notice


def test_an_unknown_number_shows_no_notice(db: Any, now: datetime) -> None:
    # when
    html = _check("+85291239999", now)

    # then
    assert 'data-testid="urgency"' not in html
    assert reverse("webtopup:start") in html
