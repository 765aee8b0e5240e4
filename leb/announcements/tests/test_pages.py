from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.test import Client

from leb.announcements.models import Kind
from leb.common import clock

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def client_in(language: str) -> Client:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def test_list_shows_pinned_first_then_newest(announcement: Any, now: datetime) -> None:
    # given
    announcement(title_en="Old", published_at=now - timedelta(days=5))
    announcement(title_en="New", published_at=now - timedelta(hours=1))
    announcement(title_en="Pinned", pinned=True, published_at=now - timedelta(days=9))

    # when
    html = Client().get("/announcements/").content.decode()

    # then
    main = html.split('<main id="main"', 1)[1]
    assert main.index("Pinned") < main.index("New") < main.index("Old")


def test_list_hides_unpublished_expired_and_future(announcement: Any, now: datetime) -> None:
    # given
    announcement(title_en="Visible")
    announcement(title_en="Draft", is_published=False)
    announcement(title_en="Expired", expires_at=now - timedelta(minutes=1))
    announcement(title_en="Scheduled", published_at=now + timedelta(hours=1))
    announcement(title_en="Expiring later", expires_at=now + timedelta(days=1))

    # when
    html = Client().get("/announcements/").content.decode()

    # then
    assert "Visible" in html
    assert "Expiring later" in html
    assert "Draft" not in html
    assert "Expired" not in html
    assert "Scheduled" not in html


def test_list_filters_by_kind(announcement: Any) -> None:
    # given
    announcement(title_en="Bonus credit", kind=Kind.PROMOTION)
    announcement(title_en="Downtime", kind=Kind.MAINTENANCE)

    # when
    html = Client().get("/announcements/?kind=maintenance").content.decode()

    # then
    assert "Downtime" in html
    assert "Bonus credit" not in html
    assert 'href="?kind=maintenance" aria-current="page"' in html


def test_list_ignores_an_unknown_kind(announcement: Any) -> None:
    # given
    announcement(title_en="Bonus credit")

    # when
    response = Client().get("/announcements/?kind=<script>&page=zzz")

    # then
    assert response.status_code == 200
    assert "Bonus credit" in response.content.decode()


@pytest.mark.parametrize(
    ("language", "title"),
    [("zh-hans", "简体消息"), ("zh-hant", "繁體消息"), ("en", "News")],
)
def test_list_in_each_language(announcement: Any, language: str, title: str) -> None:
    # given
    announcement(title_en="News", title_zh_hans="简体消息", title_zh_hant="繁體消息")

    # when
    html = client_in(language).get("/announcements/").content.decode()

    # then
    assert f'<html lang="{language}">' in html
    assert f'<span class="item-title">{title}</span>' in html


def test_list_query_budget(announcement: Any, django_assert_max_num_queries: Any) -> None:
    # given
    for n in range(25):
        announcement(pinned=n == 0)

    # when / then: banner, count, page
    with django_assert_max_num_queries(3):
        response = Client().get("/announcements/?page=2")
    assert response.status_code == 200
    assert 'rel="prev"' in response.content.decode()


def test_detail_renders_escaped_paragraphs(announcement: Any) -> None:
    # given
    item = announcement(
        title_en="<b>Bold</b> claim",
        body_en="Line one <script>alert(1)</script>\nline two\n\nNext paragraph",
    )

    # when
    response = Client().get(f"/announcements/{item.slug}/")

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>line two</p>" in html
    assert "<p>Next paragraph</p>" in html
    assert "&lt;b&gt;Bold&lt;/b&gt; claim" in html


@pytest.mark.parametrize(
    ("language", "expected"),
    [("zh-hans", "简体标题"), ("zh-hant", "繁體標題"), ("en", "English title")],
)
def test_detail_in_each_language(announcement: Any, language: str, expected: str) -> None:
    # given
    item = announcement(
        title_en="English title", title_zh_hans="简体标题", title_zh_hant="繁體標題"
    )

    # when
    html = client_in(language).get(f"/announcements/{item.slug}/").content.decode()

    # then
    assert f"<h1>{expected}</h1>" in html


def test_detail_falls_back_to_english(announcement: Any) -> None:
    # given
    item = announcement(title_en="Only English", title_zh_hant="", body_zh_hant="")

    # when
    html = client_in("zh-hant").get(f"/announcements/{item.slug}/").content.decode()

    # then
    assert "<h1>Only English</h1>" in html
    assert "<p>First paragraph.</p>" in html


@pytest.mark.parametrize(
    "fields",
    [
        {"is_published": False},
        {"expires_at": "past"},
        {"published_at": "future"},
    ],
)
def test_hidden_announcements_are_404(
    announcement: Any, now: datetime, fields: dict[str, Any]
) -> None:
    # given
    values = dict(fields)
    if values.get("expires_at") == "past":
        values["expires_at"] = now - timedelta(seconds=1)
    if values.get("published_at") == "future":
        values["published_at"] = now + timedelta(seconds=1)
    item = announcement(**values)

    # when
    response = Client().get(f"/announcements/{item.slug}/")

    # then
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/announcements/does-not-exist/",
        "/announcements/%E4%BC%98%E6%83%A0/",
        "/announcements/../etc/passwd",
        "/announcements/a%00b/",
        "/announcements/" + "x" * 300 + "/",
    ],
)
def test_bad_slugs_are_404(db: Any, path: str) -> None:
    # when
    response = Client().get(path)

    # then
    assert response.status_code == 404


def test_an_announcement_disappears_when_it_expires(announcement: Any, now: datetime) -> None:
    # given
    item = announcement(expires_at=now + timedelta(hours=1))
    assert Client().get(f"/announcements/{item.slug}/").status_code == 200

    # when
    with clock.frozen(now + timedelta(hours=2)):
        response = Client().get(f"/announcements/{item.slug}/")

    # then
    assert response.status_code == 404


def _feed(language: str) -> ElementTree.Element:
    response = client_in(language).get("/announcements/feed.atom")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    return ElementTree.fromstring(response.content)  # noqa: S314 (our own response)


def test_atom_feed_lists_visible_announcements(announcement: Any, now: datetime) -> None:
    # given
    announcement(title_en="First", published_at=now - timedelta(days=2), kind=Kind.FEE_CHANGE)
    announcement(title_en="Second", published_at=now - timedelta(days=1))
    announcement(title_en="Draft", is_published=False)

    # when
    feed = _feed("en")

    # then
    assert feed.tag == f"{ATOM}feed"
    assert feed.get(XML_LANG) == "en"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == ["Second", "First"]
    first = entries[1]
    link = first.find(f"{ATOM}link")
    assert link is not None
    assert link.get("href", "").startswith("http://testserver/announcements/news-")
    category = first.find(f"{ATOM}category")
    assert category is not None
    assert category.get("term") == "Fee change"
    assert "<p>First paragraph.</p>" in (first.findtext(f"{ATOM}summary") or "")


@pytest.mark.parametrize(
    ("language", "title"),
    [("zh-hans", "简体标题"), ("zh-hant", "繁體標題"), ("en", "English title")],
)
def test_atom_feed_is_in_the_request_language(announcement: Any, language: str, title: str) -> None:
    # given
    announcement(title_en="English title", title_zh_hans="简体标题", title_zh_hant="繁體標題")

    # when
    feed = _feed(language)

    # then
    assert feed.get(XML_LANG) == language
    assert [e.findtext(f"{ATOM}title") for e in feed.findall(f"{ATOM}entry")] == [title]


def test_atom_feed_escapes_bodies(announcement: Any) -> None:
    # given
    announcement(body_en="<img src=x onerror=alert(1)>")

    # when
    feed = _feed("en")

    # then
    summary = feed.find(f"{ATOM}entry/{ATOM}summary")
    assert summary is not None
    assert "<img" not in (summary.text or "")
    assert "&lt;img" in (summary.text or "")


def test_empty_feed_is_valid(db: Any) -> None:
    # when
    feed = _feed("en")

    # then
    assert feed.findall(f"{ATOM}entry") == []
    assert feed.findtext(f"{ATOM}title")
