"""In a real browser: the urgency warning on the line page, the home quick
check and the notification centre, in each language; and the home page's
promotion banner. Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from leb.announcements.models import Announcement, Kind
from leb.catalog.models import Promotion
from leb.common import clock
from leb.e2e.helpers import shot

pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = ["en", "zh-hans", "zh-hant"]

# WCAG relative-luminance contrast of an element's text on its own background.
CONTRAST_JS = """(el) => {
  const rgb = (c) => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bgEl = el, bg = getComputedStyle(bgEl).backgroundColor;
  while (bg === 'rgba(0, 0, 0, 0)' && bgEl.parentElement) {
    bgEl = bgEl.parentElement; bg = getComputedStyle(bgEl).backgroundColor;
  }
  const a = lum(rgb(getComputedStyle(el).color)), b = lum(rgb(bg));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def _sign_in(page: Any, live_server: Any, user: Any) -> None:
    client = Client()
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def _assert_notice(page: Any, level: str, language: str) -> None:
    notice = page.locator(f'[data-testid="urgency"][data-level="{level}"]').first
    assert notice.is_visible()
    assert notice.get_attribute("role") == "alert"
    labelled = notice.get_attribute("aria-labelledby")
    assert labelled and page.locator(f"#{labelled}").inner_text().strip()
    # the level in words, not only in colour
    label = notice.locator(".urgency-label")
    assert label.inner_text().strip()
    assert label.evaluate(CONTRAST_JS) >= 4.5
    button = notice.locator('[data-testid="urgency-action"]')
    assert button.is_visible()
    assert button.evaluate(CONTRAST_JS) >= 4.5
    assert button.bounding_box()["height"] >= 44
    if language == "en":
        assert button.inner_text().strip() == "Top up now"


@pytest.mark.parametrize("language", LANGUAGES)
def test_urgent_grace_and_suspended_lines_in_the_browser(
    page_for: Any, live_server: Any, owner: Any, make_line: Any, now: datetime, language: str
) -> None:
    # given at `at`: an urgent line (5 days left), one in grace, one suspended
    at = now + timedelta(days=70)
    urgent = make_line(owner=owner, at=now + timedelta(days=45))
    grace = make_line(owner=owner, at=now + timedelta(days=30))
    suspended = make_line(owner=owner)
    page = page_for(language)
    _sign_in(page, live_server, owner)

    with clock.frozen(at):
        # when the owner opens each line page
        for line, level in ((urgent, "urgent"), (grace, "grace"), (suspended, "suspended")):
            page.goto(f"{live_server.url}/my/lines/{line.pk}/")
            assert page.locator("html").get_attribute("lang") == language
            # then a clear warning with its "Top up now" button
            _assert_notice(page, level, language)
            shot(page, f"urgency-line-{level}-{language}")
            if language == "en" and level == "grace":
                text = page.inner_text('[data-testid="urgency"]')
                assert "cannot call out or use data" in text
                assert "The number is lost after October 28, 2026" in text
            if language == "en" and level == "suspended":
                text = page.inner_text('[data-testid="urgency"]')
                assert "barred both ways" in text
                assert "Top up by September 28, 2026 to keep the number." in text

        # and the "my lines" list warns for each of them
        page.goto(f"{live_server.url}/my/lines/")
        listed = page.locator('[data-testid="urgency"]')
        assert sorted(listed.nth(i).get_attribute("data-level") for i in range(3)) == [
            "grace",
            "suspended",
            "urgent",
        ]
        assert page.locator('[data-testid="urgency-action"]').count() == 3
        shot(page, f"urgency-list-{language}")

        # when anyone checks the urgent number on the home page
        page.goto(f"{live_server.url}/")
        page.fill("input[name=number]", urgent.msisdn)
        page.press("input[name=number]", "Enter")
        page.wait_for_selector('[data-testid="quick-check-result"]')
        _assert_notice(page, "urgent", language)
        result = page.inner_text('[data-testid="quick-check-result"]')
        assert "HK$" not in result
        shot(page, f"urgency-quick-check-{language}")

        # and the button leads to this line's plans
        with page.expect_navigation():
            page.click('[data-testid="urgency-action"]')
        assert page.url.endswith("/plans/")
        assert urgent.msisdn[-4:] in page.content()

        # when the owner opens the notification centre
        page.goto(f"{live_server.url}/notifications/")
        banners = page.locator('[data-testid="urgency-banner"]')
        assert banners.count() == 3
        levels = [
            banners.nth(i).locator('[data-testid="urgency"]').get_attribute("data-level")
            for i in range(3)
        ]
        assert levels == ["suspended", "grace", "urgent"]
        shot(page, f"urgency-centre-{language}")


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_the_home_page_shows_the_promotion_banner_from_the_promotion(
    page_for: Any, live_server: Any, hkd_plan: Any, now: datetime, language: str
) -> None:
    # given a running promotion, announced with free text that over-promises
    promo = Promotion.objects.create(
        code="hk-bonus-10",
        name_en="10% bonus",
        name_zh_hans="10%赠送",
        name_zh_hant="10%贈送",
        currency="HKD",
        bonus_credit_percent=10,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
    )
    Announcement.objects.create(
        kind=Kind.PROMOTION,
        slug="bonus",
        promotion=promo,
        title_en="20% extra on everything",
        body_en="20% extra on everything.",
        published_at=now - timedelta(days=1),
        pinned=True,
        is_published=True,
    )
    page = page_for(language)

    # when
    with clock.frozen(now):
        page.goto(f"{live_server.url}/")
        shot(page, f"promotion-home-{language}")

        # then the pinned banner and the home card speak for the promotion
        banner = page.locator('[data-testid="site-banner"]')
        assert banner.get_attribute("data-promotion") == "hk-bonus-10"
        card = page.locator('[data-testid="promotion-banner"][data-promotion="hk-bonus-10"]')
        assert card.is_visible()
        assert "20%" not in page.content()
        assert "10%" in banner.inner_text()
        if language == "en":
            assert "10% extra credit on every HKD plan" in banner.inner_text()
            assert "HK$5.00 extra credit" in card.inner_text()
        else:
            assert "HK$5.00" in card.inner_text()
            assert "50港元 / 180日" in card.inner_text()
