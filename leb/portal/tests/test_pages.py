from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

NAV_HOME = {"zh-hans": "首页", "zh-hant": "首頁", "en": "Home"}
NAV_TOP_UP = {"zh-hans": "充值", "zh-hant": "增值", "en": "Top up"}
NOTICE_EN = "We never ask for your password, PIN or card security code by phone, SMS or email."


def client_in(language: str) -> Client:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


@pytest.mark.parametrize("language", ["zh-hans", "zh-hant", "en"])
@pytest.mark.parametrize("url", ["/", "/help/", "/topup/", "/announcements/"])
def test_pages_render_in_each_language(language: str, url: str) -> None:
    # given
    client = client_in(language)

    # when
    response = client.get(url)

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<html lang="{language}">' in html
    assert NAV_HOME[language] in html
    assert NAV_TOP_UP[language] in html


def test_accept_language_picks_traditional_chinese() -> None:
    # given
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-HK,zh;q=0.9")

    # when
    response = client.get("/")

    # then
    assert '<html lang="zh-hant">' in response.content.decode()


def test_language_switch_posts_to_set_language_and_is_remembered() -> None:
    # given
    client = Client(enforce_csrf_checks=True)
    page = client.get("/help/")
    token = page.cookies[settings.CSRF_COOKIE_NAME].value
    assert 'action="/i18n/setlang/"' in page.content.decode()

    # when
    response = client.post(
        "/i18n/setlang/",
        {"language": "zh-hant", "next": "/help/", "csrfmiddlewaretoken": token},
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == "/help/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hant"
    again = client.get("/")
    assert '<html lang="zh-hant">' in again.content.decode()
    assert "首頁" in again.content.decode()


def test_language_switch_offers_three_languages_with_csrf() -> None:
    # when
    html = Client().get("/").content.decode()

    # then
    assert "csrfmiddlewaretoken" in html
    for code, name in (("zh-hans", "简体中文"), ("zh-hant", "繁體中文"), ("en", "English")):
        assert f'name="language" value="{code}" lang="{code}"' in html
        assert name in html
    assert 'value="en" lang="en" aria-pressed="true"' in html


@pytest.mark.parametrize("language", ["zh-hans", "zh-hant", "en"])
def test_footer_carries_anti_phishing_notice_in_all_three_languages(language: str) -> None:
    # when
    html = client_in(language).get("/").content.decode()

    # then
    assert NOTICE_EN in html
    for code in ("zh-hans", "zh-hant", "en"):
        assert f'<p lang="{code}">' in html or f'<p class="other-language" lang="{code}">' in html


def test_nav_marks_the_current_page() -> None:
    # when
    html = Client().get("/help/").content.decode()

    # then
    assert 'href="/help/" aria-current="page"' in html
    assert 'href="/" aria-current="page"' not in html


@pytest.mark.parametrize("url", ["/", "/help/", "/topup/", "/announcements/"])
def test_pinned_banner_is_on_every_portal_page(url: str, announcement: Any) -> None:
    # given
    pinned = announcement(pinned=True, title_en="Pinned notice")
    announcement(title_en="Ordinary notice")

    # when
    html = Client().get(url).content.decode()

    # then
    assert 'class="banner banner-promotion"' in html
    assert f'href="/announcements/{pinned.slug}/">Pinned notice</a>' in html


def test_pinned_banner_on_detail_page(announcement: Any) -> None:
    # given
    pinned = announcement(pinned=True, title_en="Pinned notice")
    other = announcement(title_en="Other")

    # when
    html = Client().get(f"/announcements/{other.slug}/").content.decode()

    # then
    assert f'href="/announcements/{pinned.slug}/">Pinned notice</a>' in html


def test_no_banner_without_a_pinned_announcement(announcement: Any) -> None:
    # given
    announcement(pinned=False)

    # when
    html = Client().get("/").content.decode()

    # then
    assert 'class="banner' not in html


def test_home_shows_latest_announcements_in_the_request_language(announcement: Any) -> None:
    # given
    announcement(title_en="Cheaper top-ups", title_zh_hans="充值更便宜", title_zh_hant="增值更平")

    # when
    html = client_in("zh-hant").get("/").content.decode()

    # then
    assert "增值更平" in html
    assert "Cheaper top-ups" not in html


def test_home_query_budget(announcement: Any, django_assert_max_num_queries: Any) -> None:
    # given
    for _ in range(5):
        announcement()
    announcement(pinned=True)
    client = Client()

    # when / then: banner, latest list and current promotions, whatever the
    # number of announcements
    with django_assert_max_num_queries(3):
        response = client.get("/")
    assert response.status_code == 200


def test_pages_use_no_inline_script_or_style(announcement: Any) -> None:
    # given
    announcement(pinned=True)

    # when
    html = Client().get("/").content.decode()

    # then: the CSP forbids both, so the pages must not need them; scripts
    # come only as files from the site's own static folder
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts
    for attributes, body in scripts:
        assert 'src="/static/' in attributes
        assert body.strip() == ""
    assert html.count("<script") == len(scripts)
    assert " style=" not in html
    assert "<style" not in html
    assert "/static/portal/portal.css" in html


def test_stylesheet_is_served() -> None:
    # when
    response = Client().get("/static/portal/portal.css")

    # then
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/portal/favicon.svg", "image/svg+xml"),
        ("/static/portal/favicon.ico", "image/"),
        ("/static/portal/apple-touch-icon.png", "image/png"),
        ("/static/portal/menu.js", "javascript"),
    ],
)
def test_icons_and_menu_script_are_served(path: str, content_type: str) -> None:
    # when
    response = Client().get(path)

    # then
    assert response.status_code == 200
    assert content_type in response["Content-Type"]


def test_favicon_ico_at_the_root_is_answered() -> None:
    # when a browser asks for /favicon.ico on its own
    response = Client().get("/favicon.ico", follow=True)

    # then it gets the icon, not a 404
    assert response.status_code == 200
    assert response.redirect_chain[0][0] == "/static/portal/favicon.ico"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # type: ignore[attr-defined]


def test_pages_link_the_icons() -> None:
    # when
    html = Client().get("/help/").content.decode()

    # then
    assert '<link rel="icon" href="/static/portal/favicon.svg" type="image/svg+xml">' in html
    assert 'rel="icon" href="/static/portal/favicon.ico"' in html
    assert 'rel="apple-touch-icon" href="/static/portal/apple-touch-icon.png"' in html
