"""The payment result page inside the site, its receipt links for guests and
owners, the sandbox's cancel button, and translated decline reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.ledger.queries import balance_by_code
from leb.payments import actions
from leb.payments.actions import do_start_attempt, settle
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.payments.providers.base import FAILED, Outcome
from leb.topups.models import OrderStatus, TopUpOrder

from .test_sandbox_flow import pay, start

pytestmark = pytest.mark.django_db


def result(client: Client, attempt: PaymentAttempt) -> str:
    response = client.get(reverse("payments:return", args=[attempt.public_id]))
    assert response.status_code == 200
    return str(response.content.decode())


def link(html: str, testid: str) -> str:
    marker = f'data-testid="{testid}"'
    assert marker in html, testid
    before = html[: html.index(marker)]
    return before[before.rindex('href="') + 6 :].split('"', 1)[0].replace("&amp;", "&")


def test_result_page_has_the_site_header_and_next_steps(client: Client, make_order: Any) -> None:
    # given a guest who just paid
    attempt = start(client, make_order())
    pay(client, attempt)

    # when the result page is shown
    html = result(client, attempt)

    # then it is a page of the site, with what was bought and where to go next
    assert 'class="site-header"' in html and 'class="site-nav"' in html
    assert 'data-state="success"' in html
    assert "HK$50 / 180 days" in html and "180 days" in html
    assert "Test payment (sandbox)" in html
    assert link(html, "result-topup-again") == reverse("webtopup:start")
    # a guest has no lines page to go to, and never sees the balance
    assert 'data-testid="result-my-lines"' not in html
    assert "Balance" not in html


def test_guest_receipt_link_works_for_the_guest(make_order: Any) -> None:
    # given a guest's successful payment, seen from a browser with no session
    payer = Client()
    order = make_order()
    attempt = start(payer, order)
    pay(payer, attempt)
    html = result(Client(), attempt)
    receipt_link = link(html, "result-receipt-link")
    pdf_link = link(html, "result-pdf-link")
    order.refresh_from_db()

    # when anybody holding the link opens it
    page = Client().get(receipt_link)
    pdf = Client().get(pdf_link)

    # then they see the receipt without the owner's details
    assert page.status_code == 200
    text = page.content.decode()
    assert order.receipt_number in text
    assert "HK$50.00" in text and "Test payment (sandbox)" in text
    assert f"ending in {order.line.msisdn[-4:]}" in text
    assert order.line.msisdn not in text and "+852 9" not in text
    assert order.payment_reference not in text
    assert "Balance" not in text
    assert f'href="{reverse("receipts:history")}"' not in text
    assert page["X-Robots-Tag"] == "noindex, nofollow"
    # and the PDF the same
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_owner_gets_their_own_receipt_link(
    owner: Any, owner_client: Client, make_order: Any
) -> None:
    # given the signed-in owner paid for their own line
    order = make_order(customer=owner)
    attempt = start(owner_client, order)
    pay(owner_client, attempt)

    # when the result page is shown
    html = result(owner_client, attempt)
    order.refresh_from_db()

    # then the receipt link is the owner's receipt page, which works
    assert link(html, "result-receipt-link") == reverse(
        "receipts:detail", args=[order.receipt_number]
    )
    assert link(html, "result-pdf-link") == reverse("receipts:pdf", args=[order.receipt_number])
    assert owner_client.get(link(html, "result-receipt-link")).status_code == 200
    # with the balance and the way to their lines
    assert "Balance" in html and "HK$50.00" in html
    assert link(html, "result-my-lines") == reverse("mylines:list")


def test_outsider_cannot_see_another_users_result_or_receipt(
    owner: Any, owner_client: Client, outsider_client: Client, make_order: Any
) -> None:
    # given the owner's successful payment
    order = make_order(customer=owner)
    attempt = start(owner_client, order)
    pay(owner_client, attempt)
    result(owner_client, attempt)
    order.refresh_from_db()

    # when an outsider asks for its result page and its receipt
    page = outsider_client.get(reverse("payments:return", args=[attempt.public_id]))
    receipt = outsider_client.get(reverse("receipts:detail", args=[order.receipt_number]))

    # then neither exists for them
    assert page.status_code == 404
    assert receipt.status_code == 404


def test_cancel_on_the_hosted_page_charges_nothing_and_goes_back(
    client: Client, make_order: Any, ledger_ok: Any
) -> None:
    # given a guest on the sandbox's card page
    order = make_order()
    attempt = start(client, order)
    checkout = reverse("payments:sandbox_checkout", args=[attempt.public_id])
    form = client.get(checkout).content.decode()
    assert 'data-testid="sandbox-cancel"' in form
    assert "{#" not in form and "{%" not in form

    # when they press "Cancel and go back"
    response = client.post(checkout, {"action": "cancel"})

    # then they are back at leb's cancel URL, which says nothing was charged
    assert response.status_code == 302
    assert response["Location"].endswith(
        reverse("payments:return", args=[attempt.public_id]) + "?cancelled=1"
    )
    page = client.get(response["Location"])
    html = page.content.decode()
    assert 'data-state="failure"' in html
    assert "Payment cancelled" in html and "The payment was cancelled." in html
    assert "Nothing was charged." in html
    assert reverse("payments:retry", args=[attempt.public_id]) in html
    attempt.refresh_from_db()
    order.refresh_from_db()
    assert attempt.status == AttemptStatus.CANCELLED
    # the order is closed unpaid: a retry prices a new one
    assert order.status == OrderStatus.FAILED and order.paid_at is None
    assert balance_by_code(f"wallet:line:{order.line_id}") == 0
    # and the card form cannot be paid any more
    again = client.post(checkout, {"number": "4242424242424242", "expiry": "12/30", "cvc": "123"})
    assert again.status_code == 302 and "cancelled=1" in again["Location"]
    assert TopUpOrder.objects.get(pk=order.pk).status == OrderStatus.FAILED
    ledger_ok()


def test_retry_after_cancel_opens_a_new_order(client: Client, make_order: Any) -> None:
    # given a cancelled payment
    order = make_order()
    attempt = start(client, order)
    checkout = reverse("payments:sandbox_checkout", args=[attempt.public_id])
    client.get(client.post(checkout, {"action": "cancel"})["Location"])

    # when the payer tries again
    response = client.post(reverse("payments:retry", args=[attempt.public_id]))

    # then a new attempt of a new order starts at the checkout
    assert response.status_code == 302
    retried = PaymentAttempt.objects.exclude(pk=attempt.pk).get()
    assert retried.order_id != order.pk
    assert retried.order.status == OrderStatus.PENDING_PAYMENT


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [
        ("4000 0000 0000 0069", "expired_card", "This card has expired."),
        ("4000 0000 0000 0127", "incorrect_cvc", "security code (CVC) is incorrect"),
        ("4000 0000 0000 0119", "processing_error", "processing error"),
    ],
)
def test_more_sandbox_declines_have_their_own_reasons(
    client: Client, make_order: Any, number: str, code: str, message: str
) -> None:
    # given a started payment
    attempt = start(client, make_order())

    # when the test card for a decline is used
    pay(client, attempt, number=number)

    # then the payer reads that reason
    html = result(client, attempt)
    attempt.refresh_from_db()
    assert attempt.failure_code == code
    assert message in html


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("card_declined", "Your card was declined."),
        ("do_not_honor", "Your card was declined."),
        ("generic_decline", "Your card was declined."),
        ("INSTRUMENT_DECLINED", "Your card was declined."),
        ("declined", "Your card was declined."),
        ("insufficient_funds", "insufficient funds"),
        ("expired_card", "This card has expired."),
        ("incorrect_cvc", "security code (CVC) is incorrect"),
        ("invalid_cvc", "security code (CVC) is incorrect"),
        ("processing_error", "processing error"),
        ("authentication_required", "3-D Secure"),
        ("something_the_provider_invented", "The payment did not go through."),
    ],
)
def test_provider_decline_codes_become_leb_messages(
    client: Client, make_order: Any, now: datetime, code: str, message: str
) -> None:
    # given a payment a provider declined with its own code and English text
    order = make_order()
    attempt = start(client, order)
    raw = "Do Not Honor: issuer response 05 (raw provider text)"
    settle(attempt, Outcome(FAILED, failure_code=code, failure_message=raw), now=now)

    # when the payer sees the result
    html = result(client, attempt)

    # then they read leb's message for that code, never the provider's words
    assert message in html
    assert "raw provider text" not in html
    # and staff keep the provider's words on the attempt, not on the order
    attempt.refresh_from_db()
    order.refresh_from_db()
    assert raw in attempt.failure_message
    assert "raw provider text" not in order.failure_reason


def test_decline_reason_is_translated(client: Client, make_order: Any, now: datetime) -> None:
    # given a declined payment, seen in Simplified Chinese
    attempt = start(client, make_order())
    settle(attempt, Outcome(FAILED, failure_code="do_not_honor", failure_message="x"), now=now)
    client.cookies["django_language"] = "zh-hans"

    # when the result page is shown
    html = result(client, attempt)

    # then the reason is in Chinese
    assert "您的卡被拒绝" in html
    assert 'lang="zh-hans"' in html


def test_unknown_codes_fall_back_to_leb_wording_only() -> None:
    # given / when / then
    assert actions.failure_code("Do_Not_Honor") == "card_declined"
    assert actions.failure_code("totally_new") == ""
    assert actions.failure_message("totally_new") == "The payment did not go through."


def test_return_and_webhook_urls_use_the_site_url(
    settings: Any, make_order: Any, now: datetime
) -> None:
    # given a configured public address
    settings.SITE_URL = "https://pay.leb.example"

    # when a sandbox payment starts (from whatever host the request came in on)
    attempt = do_start_attempt(make_order(), "sandbox", now=now)

    # then the provider is told to send the payer back to the site address
    expected = "https://pay.leb.example" + reverse("payments:return", args=[attempt.public_id])
    assert attempt.provider_data["return_url"] == expected
    assert attempt.provider_data["cancel_url"] == expected + "?cancelled=1"
    # and webhooks are delivered to the site address too
    sent: list[str] = []

    def transport(url: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append(url)
        return 200

    from leb.payments.tasks import deliver_sandbox_webhook, use_transport

    with use_transport(transport):
        deliver_sandbox_webhook.call('{"id": "evt_1"}')
    assert sent == ["https://pay.leb.example" + reverse("payments:webhook", args=["sandbox"])]


@pytest.mark.parametrize(
    ("code", "decline", "expected"),
    [
        ("incorrect_cvc", "", "incorrect_cvc"),
        ("expired_card", "", "expired_card"),
        ("processing_error", "", "processing_error"),
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("card_declined", "do_not_honor", "card_declined"),
    ],
)
def test_stripe_card_errors_map_to_leb_codes(code: str, decline: str, expected: str) -> None:
    # given a card error as the Stripe library raises it
    import stripe

    from leb.payments.providers.stripe import card_error_code

    body = {"error": {"code": code, "decline_code": decline, "message": "Raw text"}}
    exc = stripe.CardError("Raw text", None, code, json_body=body)

    # when / then
    assert card_error_code(exc) == expected
