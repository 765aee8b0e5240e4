from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from leb.common import clock

pytestmark = pytest.mark.django_db


def check(number: str, *, language: str = "en", ip: str = "203.0.113.7") -> Any:
    client = Client(REMOTE_ADDR=ip)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client.post("/", {"number": number})


def test_quick_check_shows_validity_and_days_left(make_line: Callable[..., Any]) -> None:
    # given: activated at `now`, 30 days to the first top-up (2026-07-01 12:00 HKT)
    line = make_line()

    # when
    response = check(line.msisdn)

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert f"+852 {line.msisdn[4:8]} {line.msisdn[8:]}" in html
    assert "Valid until July 1, 2026, 30 days left." in html
    assert "Top up before July 1, 2026 to keep it." in html
    # grace 30 + suspension 60 days after validity
    assert "Without a top-up the number is lost on September 29, 2026." in html


def test_quick_check_never_shows_balance_or_owner(
    make_line: Callable[..., Any], django_user_model: Any
) -> None:
    # given
    owner = django_user_model.objects.create_user(
        "secret-owner", "owner@example.com", "pw-123456789"
    )
    line = make_line(owner=owner)

    # when
    html = check(line.msisdn).content.decode()

    # then
    assert "secret-owner" not in html
    assert "owner@example.com" not in html
    assert "HK$" not in html
    assert "balance" not in html.lower()


def test_quick_check_accepts_a_national_number(make_line: Callable[..., Any]) -> None:
    # given
    line = make_line()
    national = line.msisdn.removeprefix("+852")

    # when
    html = check(f"{national[:4]} {national[4:]}").content.decode()

    # then
    assert "30 days left" in html


def test_quick_check_in_grace_says_receive_only(
    make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    line = make_line()

    # when: 40 days on, validity passed 10 days ago
    with clock.frozen(now + timedelta(days=40)):
        html = check(line.msisdn).content.decode()

    # then
    assert "Validity ended on July 1, 2026." in html
    assert "can still receive calls and SMS, but cannot call out or use data" in html
    assert "It is suspended from July 31, 2026." in html
    # the day before the number is lost (29 September, noon Hong Kong time)
    assert "The number is lost after September 28, 2026. Top up by then to keep it." in html


def test_quick_check_dates_follow_the_language(make_line: Callable[..., Any]) -> None:
    # given
    line = make_line()

    # when
    html = check(line.msisdn, language="zh-hans").content.decode()

    # then
    assert "2026年7月1日" in html
    assert '<html lang="zh-hans">' in html


def test_quick_check_unknown_number(db: Any) -> None:
    # when
    response = check("+85291234567")

    # then
    assert response.status_code == 200
    assert "We could not find an active leb line with this number." in response.content.decode()


@pytest.mark.parametrize(
    ("number", "language", "message"),
    [
        ("not-a-number", "en", "A phone number contains digits only, optionally starting with +."),
        ("", "en", "Enter a phone number."),
        ("", "zh-hans", "请输入电话号码。"),
        ("", "zh-hant", "請輸入電話號碼。"),
        ("+852 1234", "en", "is not a valid phone number."),
    ],
)
def test_quick_check_bad_input_is_a_translated_form_error(
    db: Any, number: str, language: str, message: str
) -> None:
    # when
    response = check(number, language=language)

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="error"' in html
    assert message in html
    assert 'aria-invalid="true"' in html


def test_quick_check_is_rate_limited_per_ip(make_line: Callable[..., Any]) -> None:
    # given: the default limit is 10 a minute
    line = make_line()
    for _ in range(10):
        assert check(line.msisdn).status_code == 200

    # when
    response = check(line.msisdn)
    elsewhere = check(line.msisdn, ip="198.51.100.9")

    # then
    html = response.content.decode()
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Please wait a minute and try again." in html
    assert "days left" not in html
    assert elsewhere.status_code == 200


def test_rate_limit_comes_from_settings(db: Any, settings: Any) -> None:
    # given
    settings.PORTAL_QUICK_CHECK_RATE = "2/30"
    check("+85291234567")
    check("+85291234567")

    # when
    response = check("+85291234567")

    # then
    assert response.status_code == 429
    assert response["Retry-After"] == "30"


def test_rate_limited_message_is_translated(db: Any, settings: Any) -> None:
    # given
    settings.PORTAL_QUICK_CHECK_RATE = "0/60"

    # when
    response = check("+85291234567", language="zh-hant")

    # then
    assert response.status_code == 429
    assert '<html lang="zh-hant">' in response.content.decode()


def test_quick_check_query_budget(
    make_line: Callable[..., Any], django_assert_max_num_queries: Any
) -> None:
    # given
    line = make_line()

    # when / then: banner, latest announcements, current promotions, the line
    # lookup of the status check and the line (with its policy) for its urgency
    with django_assert_max_num_queries(5):
        response = check(line.msisdn)
    assert response.status_code == 200
