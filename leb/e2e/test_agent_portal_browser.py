"""The agent portal in a real phone-sized browser, in Traditional Chinese: an
agent's seller signs in with password and authenticator code, sells a
top-up by number and gets the receipt that names the agent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from leb.agents.actions import do_approve_deposit, do_create_agent, do_record_deposit
from leb.agents.models import AgentMember, AgentTopUp, MemberRole
from leb.agents.queries import balance
from leb.catalog.models import Plan
from leb.common import clock
from leb.e2e.helpers import shot
from leb.lines.actions import do_activate_line, do_create_line
from leb.lines.models import ExtensionRule, NumberPolicy

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a long agent passphrase 7"
MSISDN = "+85294123456"


def make_shop() -> tuple[Any, Any, Any]:
    """An agent with a float, its seller with an authenticator app, a line."""
    now = clock.now()
    users = get_user_model().objects
    recorder = users.create_superuser("fin-a", "fin-a@example.com", "pw-fin-a-123")
    approver = users.create_superuser("fin-b", "fin-b@example.com", "pw-fin-b-123")
    agent = do_create_agent(
        actor="staff:test",
        now=now - timedelta(days=100),
        legal_name="Kowloon Phones Ltd",
        display_name="九龍電話 Kowloon Phones",
        region="HK",
        currency="HKD",
        discount_percent=Decimal("8"),
    )
    deposit = do_record_deposit(
        agent, amount=100_000, currency="HKD", bank_reference="B-1", staff=recorder, now=now
    )
    do_approve_deposit(deposit, staff=approver, now=now)
    seller = users.create_user("till-1", "till-1@example.com", PASSWORD)
    AgentMember.objects.create(user=seller, agent=agent, role=MemberRole.SELLER)
    device = TOTPDevice.objects.create(user=seller, name="app", confirmed=True)
    Plan.objects.create(
        code="hk-50",
        name_en="HK$50 / 180 days",
        name_zh_hans="50港元 / 180天",
        name_zh_hant="50港元 / 180日",
        currency="HKD",
        price=5000,
        credit=5000,
        validity_days=180,
    )
    policy = NumberPolicy.objects.create(
        code="hk-e2e",
        name="HK",
        first_topup_days=30,
        grace_days=30,
        suspension_days=60,
        quarantine_days=90,
        max_validity_days=365,
        extension_rule=ExtensionRule.STACK,
    )
    line = do_create_line(
        iccid="8985200000000000010",
        policy=policy,
        currency="HKD",
        activation_code="1$smdp.example.com$E2E",
        msisdn=MSISDN,
        now=now,
    )
    do_activate_line(line, now=now)
    return agent, device, line


def no_sideways_scroll(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


# Both requests go out before either is answered; each follows its redirect.
SUBMIT_CONFIRM_TWICE_AT_ONCE = """async () => {
  const form = document.querySelector("[data-testid=sell-confirm-form]");
  const send = () => fetch(form.action, {method: "POST", body: new FormData(form)});
  const answers = await Promise.all([send(), send()]);
  return answers.map((answer) => answer.url);
}"""


def test_a_seller_signs_in_with_a_code_and_sells_a_top_up_in_traditional_chinese(
    page_for: Any, live_server: Any, settings: Any
) -> None:
    # given an agent's seller on a phone reading Traditional Chinese
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    agent, device, _line = make_shop()
    page = page_for("zh-hant")
    base = live_server.url

    # when they open the portal: the password, then the authenticator's code
    page.goto(f"{base}/agent/portal/")
    assert page.url.startswith(f"{base}/account/login/")
    assert page.locator("html").get_attribute("lang") == "zh-hant"
    page.fill("input[name=identifier]", "till-1@example.com")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.url.startswith(f"{base}/account/login/verify/")
    shot(page, "agent-portal-zh-hant-1-code")
    page.fill("input[name=code]", f"{totp(device.bin_key):06d}")
    with page.expect_navigation():
        page.click("main form button[type=submit]")

    # then the portal opens on the overview, with the float
    assert page.url == f"{base}/agent/portal/"
    assert page.locator("[data-testid=portal-bar]").is_visible()
    assert "HK$1,000.00" in page.locator("[data-testid=float-available]").inner_text()
    no_sideways_scroll(page)
    shot(page, "agent-portal-zh-hant-2-home")

    # when they sell: the number, the plan, the quote
    page.locator("[data-testid=portal-sell]").click()
    page.wait_for_url(f"{base}/agent/portal/sell/")
    page.fill("input[name=msisdn]", "9412 3456")
    with page.expect_navigation():
        page.locator("[data-testid=sell-number-form] button[type=submit]").click()
    assert page.locator("[data-testid=sell-number]").inner_text().replace(" ", "") == "+85294123456"
    page.locator("label[data-plan=hk-50]").click()
    shot(page, "agent-portal-zh-hant-3-plans")
    with page.expect_navigation():
        page.locator("[data-testid=sell-plan-form] button[type=submit]").click()
    assert page.locator("[data-testid=quote-wholesale]").inner_text() == "HK$46.00"
    assert page.locator("[data-testid=quote-retail]").inner_text() == "HK$50.00"
    assert page.locator("[data-testid=quote-days]").inner_text() == "180"
    no_sideways_scroll(page)
    shot(page, "agent-portal-zh-hant-4-quote")

    # and confirm: two submits of the form at once (what a double press sends
    # when both requests leave the browser), then a double press as well
    landed = page.evaluate(SUBMIT_CONFIRM_TWICE_AT_ONCE)
    assert landed[0] == landed[1]
    assert landed[0].startswith(f"{base}/agent/portal/sales/")
    button = page.locator("[data-testid=sell-confirm]")
    # (the second press may abort the first request's navigation: wait for the
    # page that ends up shown, not for one particular navigation)
    button.dblclick()
    page.locator("[data-testid=sale]").wait_for()

    # then one sale, and the done page with the receipt that names the agent
    sale = page.locator("[data-testid=sale]")
    assert sale.get_attribute("data-status") == "completed"
    topup = AgentTopUp.objects.get()
    assert topup.order is not None
    assert sale.get_attribute("data-receipt") == topup.order.receipt_number
    assert balance(agent).available == 100_000 - 4600
    no_sideways_scroll(page)
    shot(page, "agent-portal-zh-hant-5-done")
    with page.expect_navigation():
        page.locator("[data-testid=sale-receipt-link]").click()
    assert agent.code in page.content()
    assert "九龍電話 Kowloon Phones" in page.content()
    shot(page, "agent-portal-zh-hant-6-receipt")

    # and the float page shows the sale
    page.goto(f"{base}/agent/portal/float/")
    assert "HK$954.00" in page.locator("[data-testid=float-available]").inner_text()
    assert page.locator("[data-testid=float-movements] tbody tr").count() == 2
    no_sideways_scroll(page)
    shot(page, "agent-portal-zh-hant-7-float")
    page.goto(f"{base}/agent/portal/card/")
    assert page.locator("[data-testid=agent-card]").get_attribute("data-code") == agent.code
    no_sideways_scroll(page)
    shot(page, "agent-portal-zh-hant-8-card")
