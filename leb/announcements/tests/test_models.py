from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from leb.announcements.demo import load_demo_announcements
from leb.announcements.models import Announcement, Kind, language_suffix
from leb.announcements.queries import pinned_announcement

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


def test_demo_announcements_are_idempotent(now: datetime) -> None:
    # when
    load_demo_announcements(now)
    load_demo_announcements(now)

    # then
    items = Announcement.objects.order_by("kind")
    assert items.count() == 3
    assert {a.kind for a in items} == {Kind.PROMOTION, Kind.FEE_CHANGE, Kind.MAINTENANCE}
    for item in items:
        assert item.is_visible(now)
        assert item.title_zh_hans and item.title_zh_hant and item.body_zh_hans and item.body_zh_hant
    assert items.filter(pinned=True).count() == 1


def test_demo_content_shows_in_chinese(now: datetime) -> None:
    # given
    load_demo_announcements(now)
    client = Client()
    client.cookies["django_language"] = "zh-hant"

    # when
    html = client.get("/").content.decode()

    # then
    assert "夏日優惠" in html


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
