"""The prepaid liability page: the ledger's figures per currency and month,
in the staff member's language, with the accounts and codes behind them;
a bad month range is said on the form, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from leb.backoffice.roles import FINANCE
from leb.common import clock
from leb.testing import topup

pytestmark = pytest.mark.django_db

URL = "/ops/reports/liability/"


@pytest.fixture
def finance(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("fin", password="x-unused-9", is_staff=True)
    user.groups.add(Group.objects.get(name=FINANCE))
    client = Client()
    client.force_login(user)
    return client


def test_the_page_lives_where_finance_expects_it() -> None:
    assert reverse("admin:liability_report") == URL


def test_the_page_shows_the_balances_of_the_months_asked_for(
    finance: Client, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given a top-up of HK$50 in June 2026
    topup(make_line(), hkd_plan, now=now)
    # when finance asks for May to June
    page = finance.get(URL, {"month_from": "2026-05", "month_to": "2026-06"})
    # then the HKD balances table has both months, the top-up in June
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="balances-hkd"' in html
    assert 'id="breakage-hkd"' in html
    assert 'id="vouchers-hkd"' in html
    assert "2026-05" in html and "2026-06" in html
    assert "HK$50.00" in html or "HKD 50.00" in html or "HKD\xa050.00" in html
    assert "wallet:line:*" in html
    assert "topup.credit" in html
    section = page.context["currencies"][0]["tables"][0]
    may, june = section["rows"]
    assert "50.00" not in may["closing"]
    assert "50.00" in june["closing"]


def test_the_page_opens_on_the_last_six_months(finance: Client, now: datetime) -> None:
    with clock.frozen(now):
        page = finance.get(URL)
    assert page.status_code == 200
    form = page.context["form"]
    assert (form.data["month_from"], form.data["month_to"]) == ("2026-01", "2026-06")


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "Subscriber balances (deferred revenue)"),
        ("zh-hans", "用户余额"),
        ("zh-hant", "用戶餘額"),
    ],
)
def test_the_page_speaks_the_staff_language(
    finance: Client,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    language: str,
    words: str,
) -> None:
    topup(make_line(), hkd_plan, now=now)
    page = finance.get(
        URL, {"month_from": "2026-06", "month_to": "2026-06"}, HTTP_ACCEPT_LANGUAGE=language
    )
    assert words in page.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"month_from": "June", "month_to": "2026-06"}, "Enter a month as YYYY-MM"),
        ({"month_from": "2026-07", "month_to": "2026-06"}, "must not come after"),
        ({"month_from": "2020-01", "month_to": "2026-06"}, "Choose at most 36 months."),
        ({"month_to": "2026-06"}, "This field is required."),
    ],
)
def test_a_bad_range_is_said_on_the_form(
    finance: Client, query: dict[str, str], message: str
) -> None:
    page = finance.get(URL, query)
    assert page.status_code == 200
    assert message in page.content.decode()
    assert "report" not in page.context or page.context.get("report") is None


def test_the_page_costs_the_same_queries_for_one_month_or_three_years(
    finance: Client, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # given balances in two currencies' worth of accounts
    topup(make_line(), hkd_plan, now=now)
    finance.get(URL, {"month_from": "2026-06", "month_to": "2026-06"})  # warm the session
    # when the page shows one month, then three years
    with CaptureQueriesContext(connection) as one_month:
        finance.get(URL, {"month_from": "2026-06", "month_to": "2026-06"})
    with CaptureQueriesContext(connection) as three_years:
        finance.get(URL, {"month_from": "2024-01", "month_to": "2026-12"})
    # then the count does not grow with the range, and stays small
    assert len(one_month) == len(three_years)
    assert len(three_years) <= 10
