from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from leb.common import clock
from leb.e2e.helpers import shot
from leb.topups.actions import do_create_order
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a long sandbox passphrase 9"


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_register_then_quick_check(
    page_for: Any, live_server: Any, make_line: Any, language: str
) -> None:
    # given a line valid for 30 more days
    line = make_line(at=clock.now())
    page = page_for(language)
    # when a visitor registers
    page.goto(f"{live_server.url}/account/register/")
    page.fill("input[name=identifier]", f"{language}@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit] >> nth=-1")
    page.wait_for_url(f"{live_server.url}/account/")
    shot(page, f"account-{language}")
    assert f"{language}@example.com" in page.content()
    # and checks the number on the home page
    page.goto(f"{live_server.url}/")
    page.fill("input[name=number]", line.msisdn)
    page.press("input[name=number]", "Enter")
    page.wait_for_selector(".result")
    shot(page, f"quick-check-{language}")
    text = page.inner_text(".result")
    # then it sees the days left, in its language, and no balance
    assert "30" in text
    assert ("days left" in text) if language == "en" else ("天" in text)
    assert "HK$" not in text and "HKD" not in text


def start_payment(page: Any, live_server: Any, order: TopUpOrder) -> None:
    page.goto(f"{live_server.url}/")
    with page.expect_navigation():
        page.evaluate(
            """([url]) => { const f = document.createElement('form'); f.method = 'post'; f.action = url;
              const t = document.createElement('input'); t.name = 'csrfmiddlewaretoken';
              t.value = document.querySelector('input[name=csrfmiddlewaretoken]').value; f.appendChild(t);
              document.body.appendChild(f); f.submit(); }""",
            [f"/pay/{order.public_id}/start?provider=sandbox"],
        )


def pay_with(page: Any, card: str) -> None:
    page.fill("input[name=number]", card)
    page.fill("input[name=expiry]", "12/30")
    page.fill("input[name=cvc]", "123")
    page.fill("input[name=name]", "Chan Tai Man")
    with page.expect_navigation():
        # the pay button, not "Cancel and go back" above the card form
        page.get_by_test_id("sandbox-pay").click()


@pytest.mark.parametrize(
    ("card", "outcome"),
    [
        ("4242 4242 4242 4242", "fulfilled"),
        ("4000 0000 0000 0002", "failed"),
        ("4000 0025 0000 3155", "fulfilled"),
    ],
)
def test_sandbox_card_payment(
    page_for: Any,
    live_server: Any,
    make_line: Any,
    hkd_plan: Any,
    card: str,
    outcome: str,
    ledger_ok: Any,
) -> None:
    # given an order awaiting payment
    line = make_line(at=clock.now() - timedelta(days=1))
    order = do_create_order(line=line, channel="web", plan=hkd_plan, idempotency_key=f"e2e-{card}")
    page = page_for("zh-hant")
    # when the subscriber pays on the sandbox gateway's page
    start_payment(page, live_server, order)
    shot(page, f"sandbox-card-{card[-4:]}")
    pay_with(page, card)
    if "challenge" in page.url:
        shot(page, "sandbox-3ds-challenge")
        page.locator("button").first.click()
    page.wait_for_url("**/pay/return/**")
    shot(page, f"sandbox-result-{card[-4:]}")
    # then the order ends as expected and the page says so
    order.refresh_from_db()
    assert order.status == outcome
    if outcome == "fulfilled":
        assert order.receipt_number and order.receipt_number in page.content()
    else:
        assert page.locator("form").count() >= 1  # the retry button
    ledger_ok()
