from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import translation

from leb.common import clock
from leb.common.formatting import (
    babel_locale,
    days_until,
    format_local_date,
    format_local_datetime,
    format_money,
    user_timezone,
)

HK_NOON = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("language", "locale"),
    [("zh-hans", "zh_Hans_CN"), ("zh-hant", "zh_Hant_HK"), ("en", "en"), ("zh-hk", "zh_Hant_HK")],
)
def test_babel_locale_mapping(language: str, locale: str) -> None:
    assert babel_locale(language) == locale


@pytest.mark.parametrize(
    ("amount", "currency", "language", "expected"),
    [
        (5000, "HKD", "en", "HK$50.00"),
        (5000, "HKD", "zh-hant", "HK$50.00"),
        (5000, "HKD", "zh-hans", "HK$50.00"),
        (123450, "CNY", "zh-hans", "¥1,234.50"),
        (123450, "CNY", "en", "CN¥1,234.50"),
        (1000, "GBP", "en", "£10.00"),
        (1000, "JPY", "en", "¥1,000"),
        (-250, "HKD", "en", "-HK$2.50"),
    ],
)
def test_format_money(amount: int, currency: str, language: str, expected: str) -> None:
    assert format_money(amount, currency, language) == expected


def test_money_tag_uses_the_active_language() -> None:
    # given
    template = Template("{% load leb_format %}{% money amount 'hkd' %}")

    # when
    with translation.override("zh-hant"):
        rendered = template.render(Context({"amount": 5000}))

    # then
    assert rendered == "HK$50.00"


@pytest.mark.parametrize(
    ("language", "expected_date", "expected_datetime"),
    [
        ("en", "June 1, 2026", "Jun 1, 2026, 12:00\u202fPM"),
        ("zh-hans", "2026年6月1日", "2026年6月1日 12:00"),
        ("zh-hant", "2026年6月1日", "2026年6月1日 下午12:00"),
    ],
)
def test_dates_in_each_language_and_hong_kong_time(
    language: str, expected_date: str, expected_datetime: str
) -> None:
    # given
    tz = user_timezone(None)

    # then
    assert format_local_date(HK_NOON, tz, language) == expected_date
    assert format_local_datetime(HK_NOON, tz, language) == expected_datetime


def test_date_rolls_over_in_the_users_time_zone() -> None:
    # given: 20:00 UTC is already the next day in Hong Kong
    late = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)

    # then
    assert format_local_date(late, user_timezone(None), "en") == "June 2, 2026"


def test_tz_session_key_overrides_the_time_zone() -> None:
    # given
    request = RequestFactory().get("/")
    request.session = {"tz": "Europe/London"}  # type: ignore[assignment]
    template = Template("{% load leb_format %}{% localdatetime when %}|{% localdate when %}")

    # when
    with translation.override("en"):
        rendered = template.render(Context({"when": HK_NOON, "request": request}))

    # then
    assert rendered == "Jun 1, 2026, 5:00\u202fAM|June 1, 2026"


def test_unknown_tz_in_session_falls_back_to_settings() -> None:
    # given
    request = RequestFactory().get("/")
    request.session = {"tz": "Mars/Olympus"}  # type: ignore[assignment]

    # then
    assert str(user_timezone(request)) == "Asia/Hong_Kong"


def test_localdate_accepts_a_plain_date() -> None:
    # given
    template = Template("{% load leb_format %}{% localdate day 'medium' %}")

    # when
    with translation.override("en"):
        rendered = template.render(Context({"day": date(2026, 12, 25)}))

    # then
    assert rendered == "Dec 25, 2026"


def test_days_until_uses_the_clock() -> None:
    # given
    target = HK_NOON + timedelta(days=7, hours=1)

    # then
    with clock.frozen(HK_NOON):
        assert days_until(target) == 7
        assert (
            Template("{% load leb_format %}{% days_until t %}").render(Context({"t": target}))
            == "7"
        )
    assert days_until(HK_NOON - timedelta(hours=1), now=HK_NOON) == -1


def test_tags_render_nothing_for_none() -> None:
    # given
    template = Template(
        "{% load leb_format %}[{% money none 'HKD' %}][{% localdate none %}]"
        "[{% localdatetime none %}][{% days_until none %}]"
    )

    # then
    assert template.render(Context({"none": None})) == "[][][][]"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+85291234567", "+852 9123 4567"),
        ("+447700900123", "+44 7700 900123"),
        ("junk", "junk"),
        ("", ""),
    ],
)
def test_phone_filter(value: str, expected: str) -> None:
    assert Template("{% load leb_format %}{{ v|phone }}").render(Context({"v": value})) == expected
