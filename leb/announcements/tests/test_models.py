from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from leb.announcements.demo import load_demo_announcements
from leb.announcements.models import Announcement, Kind, language_suffix
from leb.announcements.queries import pinned_announcement
from leb.catalog.models import Promotion

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "suffix"),
    [
        ("zh-hans", "zh_hans"),
        ("zh-hant", "zh_hant"),
        ("zh-hk", "zh_hant"),
        ("zh-cn", "zh_hans"),
        ("en", "en"),
        ("fr", "en"),
    ],
)
def test_language_suffix(language: str, suffix: str) -> None:
    assert language_suffix(language) == suffix


def test_title_follows_the_active_language(announcement: Any) -> None:
    # given
    item = announcement(title_en="Hello", title_zh_hans="你好", title_zh_hant="")

    # then
    with translation.override("zh-hans"):
        assert item.title == "你好"
    with translation.override("zh-hant"):
        assert item.title == "Hello"
    with translation.override("en"):
        assert item.title == "Hello"


def test_pinned_banner_is_one_query_then_cached(
    announcement: Any, now: datetime, django_assert_num_queries: Any
) -> None:
    # given
    item = announcement(pinned=True)

    # when / then
    with django_assert_num_queries(1):
        assert pinned_announcement(now) == item
    with django_assert_num_queries(0):
        assert pinned_announcement(now) == item


def test_saving_an_announcement_refreshes_the_banner(announcement: Any, now: datetime) -> None:
    # given
    first = announcement(pinned=True)
    assert pinned_announcement(now) == first

    # when
    first.pinned = False
    first.save()

    # then
    assert pinned_announcement(now) is None


def test_cached_banner_still_honours_expiry(announcement: Any, now: datetime) -> None:
    # given
    item = announcement(pinned=True, expires_at=now + timedelta(minutes=5))
    assert pinned_announcement(now) == item

    # then
    assert pinned_announcement(now + timedelta(minutes=6)) is None


def _demo_promotions(now: datetime) -> None:
    # As leb/ops/demo.py creates them (looked up by code).
    Promotion.objects.create(
        code="hk-bonus-10",
        name_en="10% bonus credit on HKD plans",
        name_zh_hans="港币套餐充值送10%话费",
        name_zh_hant="港幣套餐增值送10%通話額",
        currency="HKD",
        bonus_credit_percent=10,
        starts_at=now - timedelta(days=90),
        ends_at=now + timedelta(days=90),
        budget=20000,
    )
    Promotion.objects.create(
        code="hk-keep30",
        name_en="KEEP30: 30 extra days",
        name_zh_hans="KEEP30：加送30天有效期",  # noqa: RUF001
        name_zh_hant="KEEP30：加送30日有效期",  # noqa: RUF001
        promo_code="KEEP30",
        currency="HKD",
        bonus_days=30,
        per_line_limit=1,
        starts_at=now - timedelta(days=120),
        ends_at=now + timedelta(days=60),
    )


def test_demo_announcements_are_idempotent_and_link_the_demo_promotions(now: datetime) -> None:
    # given the demo promotions
    _demo_promotions(now)

    # when
    load_demo_announcements(now)
    load_demo_announcements(now)

    # then
    items = Announcement.objects.order_by("kind", "slug")
    assert items.count() == 4
    assert {a.kind for a in items} == {Kind.PROMOTION, Kind.FEE_CHANGE, Kind.MAINTENANCE}
    for item in items:
        assert item.is_visible(now)
        if item.kind == Kind.PROMOTION:
            assert item.promotion is not None
        else:
            assert item.title_zh_hans and item.title_zh_hant
            assert item.body_zh_hans and item.body_zh_hant
    linked = dict(items.filter(kind=Kind.PROMOTION).values_list("slug", "promotion__code"))
    assert linked == {"summer-bonus-2026": "hk-bonus-10", "keep30-2026": "hk-keep30"}
    assert items.filter(pinned=True).count() == 1


def test_demo_promotion_announcements_are_left_out_without_the_promotions(
    now: datetime,
) -> None:
    # when the catalog demo is not loaded
    load_demo_announcements(now)

    # then only the announcements that need no promotion are there
    assert set(Announcement.objects.values_list("kind", flat=True)) == {
        Kind.FEE_CHANGE,
        Kind.MAINTENANCE,
    }


def test_demo_content_shows_in_chinese(now: datetime, hkd_plan: Any) -> None:
    # given the demo promotions and a plan they apply to
    _demo_promotions(now)
    load_demo_announcements(now)
    client = Client()
    client.cookies["django_language"] = "zh-hant"

    # when
    html = client.get("/").content.decode()

    # then the maintenance notice in Chinese, and the promotion banner with the
    # promotion's own bonus (not the old free-text 20%)
    assert "系統維護" in html
    assert 'class="banner banner-promotion"' in html
    assert "20%" not in html
    assert "10%" in html


def test_admin_lists_filters_and_previews(admin_client: Client, announcement: Any) -> None:
    # given
    item = announcement(title_en="Admin me", title_zh_hans="管理我", title_zh_hant="")

    # when
    listing = admin_client.get("/ops/announcements/announcement/?kind__exact=promotion")
    change = admin_client.get(f"/ops/announcements/announcement/{item.pk}/change/")
    add = admin_client.get("/ops/announcements/announcement/add/")

    # then
    assert listing.status_code == 200
    assert "Admin me" in listing.content.decode()
    html = change.content.decode()
    assert change.status_code == 200
    assert '<section lang="zh-Hans"' in html
    assert "<h3>管理我</h3>" in html
    assert "falls back to English" in html
    assert add.status_code == 200
