"""A guest's top-up in a real browser, in each language: the payment result
page inside the site, the receipt through its signed link, and the PDF."""

from __future__ import annotations

from typing import Any

import pytest

from leb.common import clock
from leb.e2e.helpers import shot
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db(transaction=True)


def submit(page: Any, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).last.click()


def guest_top_up(page: Any, base: str, number: str, tag: str) -> None:
    page.goto(f"{base}/topup/")
    page.fill("input[name=number]", number)
    submit(page, "main form button[type=submit]")
    page.locator("input[name=choice]").first.check()
    submit(page, "main form button[type=submit]")
    submit(page, "form.wt-pay button[type=submit]")
    shot(page, f"{tag}-checkout")
    page.fill("input[name=number]", "4242 4242 4242 4242")
    page.fill("input[name=expiry]", "12/30")
    page.fill("input[name=cvc]", "123")
    page.fill("input[name=name]", "Chan Tai Man")
    submit(page, "form button[type=submit]")
    page.wait_for_url("**/pay/return/**")


@pytest.mark.parametrize("language", ["en", "zh-hans", "zh-hant"])
def test_guest_result_page_receipt_and_pdf(
    page_for: Any, live_server: Any, make_line: Any, hkd_plan: Any, language: str, ledger_ok: Any
) -> None:
    # given a line and a visitor without an account, reading `language`
    line = make_line(at=clock.now())
    page = page_for(language)
    base = live_server.url
    tag = f"receipts-{language}"

    # when the visitor tops up by number with the test card
    guest_top_up(page, base, line.msisdn, tag)
    shot(page, f"{tag}-result")

    # then the result page is a page of the site, in their language
    order = TopUpOrder.objects.get(line=line)
    assert order.status == "fulfilled" and order.customer is None
    assert page.locator("html").get_attribute("lang") == language
    assert page.locator("header.site-header").is_visible()
    # (on a phone the navigation folds behind a menu button)
    assert page.locator("nav.site-nav").count() == 1
    assert page.locator("[data-testid=payment-result]").get_attribute("data-state") == "success"
    assert page.locator("[data-testid=result-topup-again]").is_visible()
    assert page.locator("[data-testid=result-my-lines]").count() == 0
    if language == "en":
        assert "Top-up successful" in page.inner_text("main")
        assert "Test payment (sandbox)" in page.inner_text("main")
    pdf_href = page.locator("[data-testid=result-pdf-link]").get_attribute("href")

    # when the guest opens the receipt from the result page
    submit(page, "[data-testid=result-receipt-link]")
    shot(page, f"{tag}-receipt")

    # then it is their receipt, through a signed link, without owner details
    assert "/receipts/guest/" in page.url
    receipt = page.locator("[data-testid=receipt]")
    assert receipt.get_attribute("data-guest") == "1"
    facts = page.inner_text("[data-testid=receipt-facts]")
    assert order.receipt_number in facts
    assert line.msisdn[-4:] in facts and line.msisdn not in facts.replace(" ", "")
    assert order.payment_reference not in facts
    assert page.locator("[data-fact=payment]").inner_text().strip() != "sandbox"
    assert page.locator("[data-fact=seller]").inner_text().strip() == "leb"
    if language == "en":
        assert "Test payment (sandbox)" in facts and "180 days" in facts

    # and both PDF links (result page, receipt page) download it as that guest
    receipt_pdf = page.locator("[data-testid=receipt-pdf-link]").get_attribute("href")
    for href in (pdf_href, receipt_pdf):
        assert "/receipts/guest/" in href
        pdf = page.request.get(f"{base}{href}")
        assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
        assert pdf.body().startswith(b"%PDF")
    ledger_ok()


def test_cancel_on_the_card_page_goes_back_with_nothing_charged(
    page_for: Any, live_server: Any, make_line: Any, hkd_plan: Any, ledger_ok: Any
) -> None:
    # given a guest on the sandbox card page
    line = make_line(at=clock.now())
    page = page_for("en")
    base = live_server.url
    page.goto(f"{base}/topup/")
    page.fill("input[name=number]", line.msisdn)
    submit(page, "main form button[type=submit]")
    page.locator("input[name=choice]").first.check()
    submit(page, "main form button[type=submit]")
    submit(page, "form.wt-pay button[type=submit]")

    # when they press "Cancel and go back"
    submit(page, "[data-testid=sandbox-cancel]")
    shot(page, "receipts-en-cancelled")

    # then they are back on leb's result page: cancelled, nothing charged
    assert "/pay/return/" in page.url and "cancelled=1" in page.url
    text = page.inner_text("main")
    assert "Payment cancelled" in text and "Nothing was charged." in text
    assert page.locator("header.site-header").is_visible()
    order = TopUpOrder.objects.get(line=line)
    assert order.status == "failed" and order.paid_at is None
    ledger_ok()
