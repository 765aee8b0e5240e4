"""The public agent check in a real phone-sized browser, in each language:
an authorised agent, a suspended one and an unknown seller, then the report."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from leb.agents.actions import do_create_agent, do_set_agent_status
from leb.agents.models import AgentChannel, AgentStatus, ChannelKind
from leb.common import clock
from leb.e2e.helpers import shot

pytestmark = pytest.mark.django_db(transaction=True)


def make_agents() -> tuple[Any, Any]:
    now = clock.now()
    values: dict[str, Any] = {"region": "HK", "currency": "HKD", "discount_percent": Decimal("8")}
    active = do_create_agent(
        actor="staff:test",
        now=now - timedelta(days=200),
        legal_name="Kowloon Phones Ltd",
        display_name="九龍電話 Kowloon Phones",
        **values,
    )
    for kind, value, label in [
        (ChannelKind.SHOP_URL, "https://shop.example.com/kowloon", "HKTVmall"),
        (ChannelKind.HANDLE, "@kowloonphones", "Instagram"),
        (ChannelKind.PHONE, "+852 9123 4567", "WhatsApp"),
    ]:
        AgentChannel.objects.create(agent=active, kind=kind, value=value, label=label)
    suspended = do_create_agent(
        actor="staff:test",
        now=now - timedelta(days=400),
        legal_name="Mong Kok Mobile Ltd",
        display_name="MK Mobile",
        **values,
    )
    AgentChannel.objects.create(agent=suspended, kind=ChannelKind.HANDLE, value="mkmobile")
    do_set_agent_status(
        suspended, AgentStatus.SUSPENDED, actor="staff:test", now=now - timedelta(days=5)
    )
    return active, suspended


def check(page: Any, base: str, query: str) -> Any:
    page.goto(f"{base}/agents/verify/")
    page.fill("input[name=q]", query)
    with page.expect_navigation():
        page.locator("[data-testid=agent-verify-form] button[type=submit]").click()
    return page.locator("[data-testid=agent-result]")


@pytest.mark.parametrize("language", ["en", "zh-hans", "zh-hant"])
def test_check_an_active_a_suspended_and_an_unknown_agent(
    page_for: Any, live_server: Any, language: str
) -> None:
    # given two agents and a visitor on a phone reading `language`
    active, _suspended = make_agents()
    page = page_for(language)
    base = live_server.url
    tag = f"agents-{language}"

    # when they check the authorised agent by its code, typed loosely
    result = check(page, base, active.code.lower().replace("-", " "))
    shot(page, f"{tag}-active")

    # then it is authorised, with its names and official channels
    assert page.locator("html").get_attribute("lang") == language
    assert result.get_attribute("data-state") == "authorised"
    assert result.get_attribute("data-code") == active.code
    assert page.locator("[data-fact=display_name]").inner_text() == "九龍電話 Kowloon Phones"
    assert page.locator("[data-fact=legal_name]").inner_text() == "Kowloon Phones Ltd"
    assert page.locator("[data-testid=agent-channels] li").count() == 3
    assert page.locator("[data-testid=agent-safety]").is_visible()
    # nothing spills sideways on a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # when they check the suspended agent by its handle
    result = check(page, base, "@MKMobile")
    shot(page, f"{tag}-suspended")

    # then it is clearly not authorised, since when
    assert result.get_attribute("data-state") == "suspended"
    assert page.locator("[data-fact=not_since]").is_visible()
    assert page.locator("[data-testid=agent-not-authorised-since]").is_visible()

    # when they check a seller leb does not know
    result = check(page, base, "shop.fake-leb.example/deals")
    shot(page, f"{tag}-unknown")

    # then it is not an authorised agent, and they can report it
    assert result.get_attribute("data-state") == "unknown"
    report = page.locator("[data-testid=agent-report]")
    assert report.is_visible()
    if language == "en":
        assert "Not an authorised leb agent" in result.inner_text()

    # when they follow the report link
    with page.expect_navigation():
        report.click()
    shot(page, f"{tag}-report")

    # then the report form carries what they searched for
    assert page.locator("[data-testid=fraud-report]").is_visible()
    assert page.locator("input[name=searched]").input_value() == "shop.fake-leb.example/deals"
