"""The validity cap in a real browser, in the three languages: the confirm
page says, right beside "Pay", how many days the top-up really adds and the
date it gives; a plan that would add nothing is marked on the plans page and
refused with the reason when chosen. Screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.cache import cache

from leb.catalog.models import Plan
from leb.common import clock
from leb.common.formatting import format_local_date
from leb.e2e.helpers import shot
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = ["zh-hans", "zh-hant", "en"]
# What the sentence beside "Pay" says, besides the numbers and the date.
WORDS = {
    "zh-hans": ("而非", "天"),
    "zh-hant": ("而非", "日"),
    "en": ("not 180", "days"),
}
REFUSED = {
    "zh-hans": "此次充值不会增加任何天数",
    "zh-hant": "此次增值不會增加任何日數",
    "en": "This top-up would add no days",
}


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """Each test enters numbers on /topup/: leave the per-address quota as
    the next browser test expects to find it."""
    cache.clear()
    yield
    cache.clear()


def submit(page: Any, selector: str = "main form button[type=submit]") -> None:
    with page.expect_navigation():
        page.locator(selector).last.click()


def _plan(code: str, *, days: int, credit: int) -> Plan:
    return Plan.objects.create(
        code=code,
        name_en=f"{code} · {days} days",
        name_zh_hans=f"{code} · {days}天",
        name_zh_hant=f"{code} · {days}日",
        currency="HKD",
        price=5000,
        credit=credit,
        validity_days=days,
    )


def _line_valid_for(make_line: Any, days: int) -> Any:
    now = clock.now()
    line = make_line(at=now)
    line.valid_until = now + timedelta(days=days)
    line.save(update_fields=["valid_until"])
    return line


@pytest.mark.parametrize("language", LANGUAGES)
def test_confirm_page_says_the_days_really_added_beside_pay(
    page_for: Any, live_server: Any, make_line: Any, language: str
) -> None:
    # given a 180-day plan and a line valid 300 more days under a 365-day cap
    _plan("hk-180", days=180, credit=5000)
    line = _line_valid_for(make_line, 300)
    page = page_for(language)
    # when a guest chooses the plan
    page.goto(f"{live_server.url}/topup/")
    page.fill("input[name=number]", line.msisdn)
    submit(page)
    page.locator("input[name=choice][value=hk-180]").check()
    submit(page)
    shot(page, f"cap-{language}-confirm")
    # then right beside the pay button: 65 days added, not 180, and the new date
    days = page.locator("#wt-days-added")
    assert days.is_visible()
    assert days.get_attribute("data-days-added") == "65"
    assert days.get_attribute("data-plan-days") == "180"
    text = days.inner_text()
    new_date = format_local_date(
        clock.now() + timedelta(days=365), ZoneInfo(settings.TIME_ZONE), language
    )
    assert "65" in text and "180" in text and "365" in text and new_date in text, text
    for word in WORDS[language]:
        assert word in text, text
    # the sentence is the pay form's own, just before its first button
    assert page.locator("form.wt-pay #wt-days-added + button[name=provider]").count() == 1
    sentence, button = days.bounding_box(), page.locator("form.wt-pay button").first.bounding_box()
    assert sentence is not None and button is not None
    assert 0 <= button["y"] - (sentence["y"] + sentence["height"]) < 40


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_plan_that_would_add_nothing_is_marked_and_refused(
    page_for: Any, live_server: Any, make_line: Any, language: str
) -> None:
    # given a days-only plan and a line already valid until its cap
    _plan("hk-keep", days=180, credit=0)
    _plan("hk-credit", days=90, credit=5000)
    line = _line_valid_for(make_line, 365)
    page = page_for(language)
    page.goto(f"{live_server.url}/topup/")
    page.fill("input[name=number]", line.msisdn)
    submit(page)
    # then the plans page marks it, and says the other adds no days, only credit
    refused = page.locator(".wt-offer-refused")
    assert refused.count() == 1
    assert REFUSED[language] in refused.inner_text()
    assert page.locator(".wt-offer-fewer .wt-offer-note").count() == 1
    shot(page, f"cap-{language}-plans")
    # when the guest chooses it anyway
    page.locator("input[name=choice][value=hk-keep]").check()
    submit(page)
    # then the form says why, and no order exists
    shot(page, f"cap-{language}-refused")
    assert REFUSED[language] in page.locator(".errors").inner_text()
    assert "/confirm/" not in page.url
    assert not TopUpOrder.objects.exists()
