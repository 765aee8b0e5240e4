"""The back office's dashboard and a line's story in a browser, in the three
languages: the charts are drawn, a bar opens the list it counts, and the
story reads as sentences."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from leb.common import clock
from leb.testing import topup

from .helpers import shot

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page: Any, live_server: Any, user: Any) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


@pytest.mark.parametrize("language", ["en", "zh-hans", "zh-hant"])
def test_the_dashboard_draws_its_charts_and_a_bar_opens_its_list(
    page_for: Any,
    live_server: Any,
    make_line: Any,
    hkd_plan: Any,
    gbp_plan: Any,
    uk_policy: Any,
    language: str,
) -> None:
    # given top-ups on the last days in two currencies
    now = clock.now()
    line = make_line(at=now - timedelta(days=3))
    for days in range(3):
        topup(line, hkd_plan, now=now - timedelta(days=days))
    topup(
        make_line(policy=uk_policy, currency="GBP", at=now - timedelta(days=1)), gbp_plan, now=now
    )
    root = get_user_model().objects.create_superuser(f"root-{language}", password="x-unused-9")
    page = page_for(language, width=1280)
    _sign_in(page, live_server, root)

    # when the back office opens
    page.goto(f"{live_server.url}/ops/")

    # then every chart is drawn with visible bars, and the app list is below
    charts = page.locator("svg[role=img]")
    assert charts.count() >= 9
    box = page.locator("#figure-topups-per-day svg").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    tallest = max(
        float(h)
        for h in page.locator("#figure-topups-per-day rect").evaluate_all(
            "r => r.map(e => e.getAttribute('height'))"
        )
    )
    assert tallest > 50
    assert page.locator("#content-main").is_visible()
    shot(page, f"backoffice-dashboard-{language}")

    # and the tallest bar of today opens the list of today's top-ups
    page.locator("#figure-revenue-hkd svg a").last.click()
    page.wait_for_load_state()
    assert "/ops/topups/topuporder/" in page.url
    assert page.locator("#result_list tbody tr").count() == 1


@pytest.mark.parametrize("language", ["en", "zh-hans", "zh-hant"])
def test_the_story_of_a_line_reads_as_sentences(
    page_for: Any, live_server: Any, make_line: Any, hkd_plan: Any, language: str
) -> None:
    now = clock.now()
    line = make_line(at=now - timedelta(days=2))
    topup(line, hkd_plan, now=now - timedelta(days=1))
    root = get_user_model().objects.create_superuser(f"story-{language}", password="x-unused-9")
    page = page_for(language, width=1280)
    _sign_in(page, live_server, root)
    page.goto(f"{live_server.url}/ops/lines/line/{line.pk}/change/")
    shot(page, f"backoffice-line-{language}")
    page.locator(".object-tools a").first.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/ops/lines/line/{line.pk}/story/")
    rows = page.locator(".leb-story-table tbody tr")
    assert rows.count() >= 3
    shot(page, f"backoffice-story-{language}")
