"""Promotion banners and announcements are written from the promotion's own
fields, agree with the quote checkout gives, and say so when it has ended."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.test import Client

from leb.announcements.models import Announcement, Kind
from leb.announcements.queries import pinned_announcement
from leb.catalog.models import Plan, Promotion
from leb.catalog.quotes import quote
from leb.common import clock
from leb.common.formatting import format_money

pytestmark = pytest.mark.django_db

_serial = itertools.count(1)


@pytest.fixture
def promotion(db: Any, now: datetime) -> Callable[..., Promotion]:
    def factory(*, plans: list[Plan] | None = None, **fields: Any) -> Promotion:
        n = next(_serial)
        values: dict[str, Any] = {
            "code": f"promo-{n}",
            "name_en": "Whatever the operator typed: 50% off everything!",
            "name_zh_hans": "随便写的名字",
            "name_zh_hant": "隨便寫的名字",
            "currency": "HKD",
            "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=30),
        }
        values.update(fields)
        promo = Promotion.objects.create(**values)
        if plans:
            promo.plans.set(plans)
        return promo

    return factory


@pytest.fixture
def hk100_plan(db: Any) -> Plan:
    return Plan.objects.create(
        code="hk-100",
        name_en="HK$100 / 365 days",
        name_zh_hans="100港元 / 365天",
        name_zh_hant="100港元 / 365日",
        currency="HKD",
        price=10000,
        credit=10000,
        validity_days=365,
    )


def _linked(announcement: Callable[..., Any], promo: Promotion, **fields: Any) -> Announcement:
    item: Announcement = announcement(
        promotion=promo,
        title_en="Free text that promises 99% extra credit",
        body_en="Free text body: 99% extra credit for ever.",
        pinned=True,
        **fields,
    )
    return item


def _banner(html: str) -> str:
    found = re.search(r'<aside class="banner[^"]*".*?</aside>', html, re.S)
    return found.group(0) if found else ""


def _home_promotions(html: str) -> list[str]:
    return re.findall(r'<li class="promotion-item".*?</li>', html, re.S)


def test_the_banner_bonus_is_the_bonus_the_quote_gives(
    announcement: Any,
    promotion: Any,
    make_line: Any,
    hkd_plan: Plan,
    hk100_plan: Plan,
    now: datetime,
) -> None:
    # given a 10% bonus credit promotion on every HKD plan, announced
    promo = promotion(bonus_credit_percent=10)
    _linked(announcement, promo)
    line = make_line()

    # when
    html = Client().get("/").content.decode()
    given = quote(line, hkd_plan, "web", now=now)

    # then the banner says what the promotion is, not the free text
    banner = _banner(html)
    assert "10% extra credit on every HKD plan" in banner
    assert "99%" not in html
    # and the home page's example is the quote's own bonus on the cheapest plan
    (item,) = _home_promotions(html)
    assert given.promotion_id == promo.pk
    assert given.bonus_credit == 500
    assert (
        f"For example, HK$50 / 180 days: {format_money(given.bonus_credit, 'HKD')} extra credit."
        in item
    )
    assert "Applied automatically at checkout: no code needed." in item


def test_a_code_promotion_with_days_fixed_credit_and_discount_matches_its_quote(
    announcement: Any,
    promotion: Any,
    make_line: Any,
    hkd_plan: Plan,
    hk100_plan: Plan,
    now: datetime,
) -> None:
    # given a code promotion on the HK$100 plan only, on the web
    promo = promotion(
        promo_code="KEEP30",
        bonus_days=30,
        bonus_credit_fixed=300,
        discount_percent=10,
        plans=[hk100_plan],
        channels=["web"],
        per_line_limit=1,
    )
    _linked(announcement, promo)
    line = make_line()

    # when
    html = Client().get("/").content.decode()
    given = quote(line, hk100_plan, "web", "KEEP30", now=now)

    # then
    (item,) = _home_promotions(html)
    assert (
        "HK$3.00 extra credit, 30 extra days of validity, and 10% off the price "
        "on HK$100 / 365 days" in item
    )
    assert "Enter the code KEEP30 when you top up." in item
    assert "Only when you top up by: Web." in item
    assert "Once per line." in item
    assert given.bonus_days == 30
    assert given.bonus_credit == 300
    example = (
        f"For example, HK$100 / 365 days: {format_money(given.bonus_credit, 'HKD')} extra "
        f"credit, {given.bonus_days} extra days of validity, and you pay "
        f"{format_money(given.price, 'HKD')} instead of {format_money(given.list_price, 'HKD')}."
    )
    assert example in item
    # and the HK$50 plan, which the quote gives nothing, is not promised anything
    assert "HK$50 / 180 days" not in item
    assert quote(line, hkd_plan, "web", now=now).promotion_id is None


def test_a_phone_only_promotion_says_so_and_its_bonus_is_the_phone_quote(
    promotion: Any, make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    # given a bonus only on the hotline
    promotion(bonus_credit_percent=20, channels=["ivr"])
    line = make_line()

    # when
    html = Client().get("/").content.decode()

    # then
    (item,) = _home_promotions(html)
    assert "Only when you top up by: Phone (IVR)." in item
    bonus = quote(line, hkd_plan, "ivr", now=now).bonus_credit
    assert f"{format_money(bonus, 'HKD')} extra credit." in item
    assert quote(line, hkd_plan, "web", now=now).bonus_credit == 0


@pytest.mark.parametrize(
    "ending",
    [
        pytest.param({"is_active": False}, id="switched-off"),
        pytest.param({"budget": 1000, "budget_used": 1000}, id="budget-used-up"),
        # 10% of HK$50 is HK$5.00; only HK$4.99 is left: checkout refuses it.
        pytest.param({"budget": 1000, "budget_used": 501}, id="budget-too-low"),
    ],
)
def test_an_ended_promotion_loses_its_banner_and_its_announcement_says_it_ended(
    announcement: Any, promotion: Any, hkd_plan: Plan, make_line: Any, now: datetime, ending: Any
) -> None:
    # given an announced promotion that checkout no longer applies
    promo = promotion(bonus_credit_percent=10, **ending)
    item = _linked(announcement, promo)
    assert quote(make_line(), hkd_plan, "web", now=now).promotion_id is None

    # when
    home = Client().get("/").content.decode()
    detail = Client().get(item.get_absolute_url()).content.decode()
    listing = Client().get("/announcements/").content.decode()

    # then
    assert _banner(home) == ""
    assert _home_promotions(home) == []
    assert "This promotion has ended: checkout no longer applies it." in detail
    assert 'data-testid="promotion-ended"' in listing


def test_the_banner_goes_when_the_window_closes_even_while_cached(
    announcement: Any, promotion: Any, hkd_plan: Plan, now: datetime
) -> None:
    # given a promotion ending in five minutes, its banner cached
    promo = promotion(bonus_credit_percent=10, ends_at=now + timedelta(minutes=5))
    item = _linked(announcement, promo)
    assert pinned_announcement(now) == item

    # when / then
    assert pinned_announcement(now + timedelta(minutes=6)) is None


def test_changing_the_promotion_redraws_the_banner(
    announcement: Any, promotion: Any, hkd_plan: Plan, now: datetime
) -> None:
    # given a cached banner
    promo = promotion(bonus_credit_percent=10)
    _linked(announcement, promo)
    assert "10% extra credit" in _banner(Client().get("/").content.decode())

    # when the operator changes the bonus
    promo.bonus_credit_percent = 15
    promo.save()

    # then the banner says the new bonus at once
    assert "15% extra credit" in _banner(Client().get("/").content.decode())


def test_an_upcoming_promotion_is_not_on_the_home_page(
    promotion: Any, hkd_plan: Plan, now: datetime
) -> None:
    # given
    promotion(bonus_credit_percent=10, starts_at=now + timedelta(days=1))

    # when
    html = Client().get("/").content.decode()

    # then
    assert _home_promotions(html) == []


def test_the_banner_is_in_the_viewers_language(
    announcement: Any, promotion: Any, hkd_plan: Plan
) -> None:
    # given
    promo = promotion(bonus_days=30, plans=[hkd_plan])
    _linked(announcement, promo)
    client = Client()
    client.cookies["django_language"] = "zh-hans"

    # when
    html = client.get("/").content.decode()

    # then the plan is named in the viewer's language
    assert '<html lang="zh-hans">' in html
    assert "50港元 / 180天" in _banner(html)


def test_the_announcement_pages_and_feed_use_the_promotions_words(
    announcement: Any, promotion: Any, hkd_plan: Plan
) -> None:
    # given
    promo = promotion(bonus_days=7)
    item = _linked(announcement, promo)

    # when
    detail = Client().get(item.get_absolute_url()).content.decode()
    feed = Client().get("/announcements/feed.atom").content.decode()

    # then
    for text in (detail, feed):
        assert "7 extra days of validity on every HKD plan" in text
        assert "99%" not in text
    assert "This promotion has ended" not in detail


def test_the_home_page_lists_promotions_within_its_query_budget(
    promotion: Any, hkd_plan: Plan, hk100_plan: Plan, django_assert_max_num_queries: Any
) -> None:
    # given three running promotions
    for percent in (5, 10, 15):
        promotion(bonus_credit_percent=percent, plans=[hkd_plan, hk100_plan])

    # when / then: banner, latest, promotions, their plan lists, the plans
    with django_assert_max_num_queries(5):
        html = Client().get("/").content.decode()
    assert len(_home_promotions(html)) == 3


def test_an_announcement_needs_text_unless_it_is_linked_to_a_promotion(
    now: datetime, promotion: Any
) -> None:
    # given
    bare = Announcement(kind=Kind.PROMOTION, slug="bare", published_at=now)
    linked = Announcement(
        kind=Kind.PROMOTION, slug="linked", published_at=now, promotion=promotion()
    )

    # when / then
    with pytest.raises(ValidationError) as error:
        bare.full_clean()
    assert set(error.value.message_dict) == {"title_en", "body_en"}
    linked.full_clean()


def test_the_clock_decides_the_state(
    announcement: Any, promotion: Any, hkd_plan: Plan, now: datetime
) -> None:
    # given a promotion that ends tomorrow
    promo = promotion(bonus_credit_percent=10, ends_at=now + timedelta(days=1))
    _linked(announcement, promo)

    # when the clock moves past its end
    with clock.frozen(now + timedelta(days=2)):
        html = Client().get("/").content.decode()

    # then
    assert _banner(html) == ""
    assert _home_promotions(html) == []


def test_a_promotion_with_announcements_cannot_be_deleted(
    announcement: Any, promotion: Any
) -> None:
    # given
    promo = promotion(bonus_days=7)
    _linked(announcement, promo)

    # when / then: the announcement is never left without its words
    with pytest.raises(ProtectedError):
        promo.delete()
    assert Promotion.objects.filter(pk=promo.pk).exists()


def test_the_admin_previews_the_promotions_words_in_each_language(
    admin_client: Client, announcement: Any, promotion: Any, hkd_plan: Plan
) -> None:
    # given
    promo = promotion(bonus_days=7, plans=[hkd_plan])
    item = _linked(announcement, promo)

    # when
    html = admin_client.get(f"/ops/announcements/announcement/{item.pk}/change/").content.decode()

    # then
    assert "7 extra days of validity on HK$50 / 180 days" in html
    assert "50港元 / 180天" in html
    assert "50港元 / 180日" in html
    previews = re.findall(
        r'<section lang="[^"]+" style="margin-bottom:1em">.*?</section>', html, re.S
    )
    assert len(previews) == 3
    assert not any("99%" in preview for preview in previews)
