"""The prepaid liability report in a browser: finance opens it from the back
office's first page, picks a month range, and reads the balances, breakage
and voucher liability per currency, in the three languages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from leb.backoffice.roles import FINANCE
from leb.catalog.models import FreeAmountRule
from leb.common import clock
from leb.testing import topup
from leb.vouchers.actions import do_activate_batch, do_generate_batch
from leb.vouchers.models import Distributor

from .helpers import shot

pytestmark = pytest.mark.django_db(transaction=True)

HEADINGS = {
    "en": ("Subscriber balances (deferred revenue)", "Voucher liability"),
    "zh-hans": ("用户余额", "充值卡"),
    "zh-hant": ("用戶餘額", "充值卡"),
}


def _sign_in(page: Any, live_server: Any, user: Any) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


@pytest.mark.parametrize("language", ["en", "zh-hans", "zh-hant"])
def test_finance_reads_the_liability_of_the_months_it_picks(
    page_for: Any,
    live_server: Any,
    make_line: Any,
    hkd_plan: Any,
    tmp_path: Path,
    language: str,
) -> None:
    # given a HK$50 top-up and HK$300 of vouchers sold this month
    now = clock.now()
    topup(make_line(at=now - timedelta(days=1)), hkd_plan, now=now)
    FreeAmountRule.objects.create(
        currency="HKD", min_amount=1000, max_amount=100000, tiers=[[1000, 30]]
    )
    made = do_generate_batch(
        code="HK90",
        distributor=Distributor.objects.create(code="shop", name="Shop"),
        quantity=3,
        expires_on=(now + timedelta(days=365)).date(),
        out=tmp_path / "HK90.csv",
        currency="HKD",
        value=10000,
        plan=None,
        luhn=True,
        actor="staff:test",
        now=now,
    )
    do_activate_batch(made.batch, actor="staff:test", now=now)
    user = get_user_model().objects.create_user(
        f"finance-{language}", password="x-unused-9", is_staff=True
    )
    user.groups.add(Group.objects.get(name=FINANCE))
    page = page_for(language, width=1280)
    _sign_in(page, live_server, user)
    this_month = timezone.localdate(now).replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)

    # when finance follows the link on the first page and asks for two months
    page.goto(f"{live_server.url}/ops/")
    page.locator("#liability-report-link").click()
    page.wait_for_load_state()
    assert page.url.startswith(f"{live_server.url}/ops/reports/liability/")
    page.locator("#id_month_from").fill(f"{last_month:%Y-%m}")
    page.locator("#id_month_to").fill(f"{this_month:%Y-%m}")
    page.locator("input[type=submit]").click()
    page.wait_for_load_state()

    # then each HKD table has a row per month, and this month closes with
    # the top-up and the vouchers sold
    balances = page.locator("#balances-hkd")
    vouchers = page.locator("#vouchers-hkd")
    assert balances.locator("tbody tr").count() == 2
    assert vouchers.locator("tbody tr").count() == 2
    assert "50.00" in balances.locator("tbody tr").last.locator("td.closing").inner_text()
    assert "300.00" in vouchers.locator("tbody tr").last.locator("td.closing").inner_text()
    assert "0.00" in vouchers.locator("tbody tr").first.locator("td.closing").inner_text()
    balances_title, vouchers_title = HEADINGS[language]
    assert balances_title in (balances.locator("caption").text_content() or "")
    assert vouchers_title in (vouchers.locator("caption").text_content() or "")
    assert "voucher_liability:HKD" in page.locator("#currency-hkd").inner_text()
    table_box = balances.bounding_box()
    assert table_box and table_box["width"] > 600
    shot(page, f"backoffice-liability-{language}")

    # and a backwards range is said on the form
    page.locator("#id_month_from").fill(f"{this_month:%Y-%m}")
    page.locator("#id_month_to").fill(f"{last_month:%Y-%m}")
    page.locator("input[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator(".errornote").is_visible()
    assert page.locator("#balances-hkd").count() == 0
