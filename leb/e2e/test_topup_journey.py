"""The subscriber's whole journey in a real browser: register, bind a line,
top up with each kind of sandbox card, get the receipt PDF, find it in the
history; and a guest top-up by number."""

from __future__ import annotations

from typing import Any

import pytest

from leb.common import clock
from leb.e2e.helpers import shot
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a long journey passphrase 5"
CARDS = {
    "success": "4242 4242 4242 4242",
    "decline": "4000 0000 0000 0002",
    "3ds": "4000 0025 0000 3155",
}


def submit(page: Any, selector: str = "main form button[type=submit]") -> None:
    with page.expect_navigation():
        page.locator(selector).last.click()


def top_up_from_start(page: Any, base: str, *, number: str | None, card: str, tag: str) -> None:
    """From /topup/ to the payment result, choosing the first plan."""
    page.goto(f"{base}/topup/")
    if number is None:
        submit(page, "form.wt-lines button[name=line]")
    else:
        page.fill("input[name=number]", number)
        submit(page)
    page.locator("input[name=choice]").first.check()
    submit(page)
    shot(page, f"{tag}-confirm")
    submit(page, "form.wt-pay button[type=submit]")
    page.fill("input[name=number]", card)
    page.fill("input[name=expiry]", "12/30")
    page.fill("input[name=cvc]", "123")
    page.fill("input[name=name]", "Chan Tai Man")
    submit(page, "form button[type=submit]")
    if "challenge" in page.url:
        shot(page, f"{tag}-challenge")
        page.locator("button").first.click()
    page.wait_for_url("**/pay/return/**")
    shot(page, f"{tag}-result")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_register_bind_top_up_receipt_history(
    page_for: Any, live_server: Any, make_line: Any, hkd_plan: Any, language: str, ledger_ok: Any
) -> None:
    # given an activated eSIM line nobody has bound yet
    line = make_line(at=clock.now())
    page = page_for(language)
    base = live_server.url

    # when a new subscriber registers
    page.goto(f"{base}/account/register/")
    page.fill("input[name=identifier]", f"journey-{language}@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    submit(page)

    # and binds the line with the activation code printed with the eSIM
    page.goto(f"{base}/my/lines/bind/")
    page.fill("input[name=iccid]", line.iccid)
    page.fill("input[name=number]", line.msisdn)
    page.fill("input[name=activation_code]", "LPA:" + line.activation_code)
    submit(page, "button[value=activation_code]")
    shot(page, f"journey-{language}-bound")
    line.refresh_from_db()
    assert line.owner is not None and line.owner.email == f"journey-{language}@example.com"

    # and tops it up three times: declined, then 3-D Secure, then a plain card
    for outcome in ("decline", "3ds", "success"):
        top_up_from_start(
            page, base, number=None, card=CARDS[outcome], tag=f"journey-{language}-{outcome}"
        )

    # then two top-ups went through and one failed
    statuses = sorted(TopUpOrder.objects.filter(line=line).values_list("status", flat=True))
    assert statuses == ["failed", "fulfilled", "fulfilled"]
    latest = TopUpOrder.objects.filter(line=line, status="fulfilled").latest("fulfilled_at")

    # and the receipt opens from the result page and downloads as a PDF
    with page.expect_navigation():
        page.click(f"a:has-text('{latest.receipt_number}')")
    shot(page, f"journey-{language}-receipt")
    pdf = page.request.get(f"{base}/receipts/{latest.receipt_number}.pdf")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    # and the history lists both receipts
    page.goto(f"{base}/receipts/")
    shot(page, f"journey-{language}-history")
    history = page.inner_text("main")
    for order in TopUpOrder.objects.filter(line=line, status="fulfilled"):
        assert order.receipt_number in history
    ledger_ok()


def test_guest_top_up_by_number(
    page_for: Any, live_server: Any, make_line: Any, hkd_plan: Any, ledger_ok: Any
) -> None:
    # given a line and a visitor without an account
    line = make_line(at=clock.now())
    page = page_for("zh-hant")
    # when the visitor tops up by number
    top_up_from_start(page, live_server.url, number=line.msisdn, card=CARDS["success"], tag="guest")
    # then the line is topped up, and the page shows no balance
    order = TopUpOrder.objects.get(line=line)
    assert order.status == "fulfilled" and order.customer is None
    assert 'data-state="success"' in page.content()
    assert "餘額" not in page.inner_text("main")  # "Balance"
    ledger_ok()
