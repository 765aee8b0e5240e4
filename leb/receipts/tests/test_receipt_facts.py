"""What a receipt says happened: days really added, how it was paid, who sold it;
and the guest's signed link."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.common import clock
from leb.receipts import signing
from leb.receipts.labels import payment_method_label, provider_label
from leb.receipts.queries import days_text, guest_path, seller_text

pytestmark = pytest.mark.django_db


def detail(client: Client, order: Any) -> str:
    response = client.get(reverse("receipts:detail", args=[order.receipt_number]))
    assert response.status_code == 200
    return str(response.content.decode())


def capped(order: Any, *, added: int | None, plan_days: int = 365) -> Any:
    """Make `order` look like a 365-day plan the validity cap cut down."""
    order.quote = dict(order.quote, plan_days=plan_days, bonus_days=0, capped=True)
    order.days_added = added
    order.save(update_fields=["quote", "days_added"])
    return order


def test_receipt_shows_the_days_really_added_and_the_plans_days(
    owner_client: Client, order: Any
) -> None:
    # given a 365-day plan that added only 180 days because of the cap
    capped(order, added=180)

    # when the owner opens the receipt and its PDF
    html = detail(owner_client, order)

    # then both numbers are there, and why
    assert "180 days (plan: 365 days; capped)" in html
    assert days_text(order) == "180 days (plan: 365 days; capped)"


def test_old_orders_fall_back_to_the_frozen_quote(order: Any) -> None:
    # given an order fulfilled before days_added was recorded, whose quote
    # moved validity by 180 days
    order.days_added = None
    order.save(update_fields=["days_added"])

    # when the days are described
    text = days_text(order)

    # then the quote's own count is used
    assert text == "180 days"


def test_fewer_days_without_the_cap_name_only_the_plan(order: Any) -> None:
    # given the reset rule gave 100 of a plan's 180 days
    order.quote = dict(order.quote, capped=False)
    order.quote["uncapped_valid_until"] = order.quote["new_valid_until"]
    order.days_added = 100
    order.save(update_fields=["quote", "days_added"])

    # when / then
    assert days_text(order) == "100 days (plan: 180 days)"


def test_credit_only_top_up_says_so(order: Any) -> None:
    # given a top-up that grants credit and no days
    order.quote = dict(order.quote, plan_days=0, bonus_days=0)
    order.days_added = 0
    order.save(update_fields=["quote", "days_added"])

    # when / then
    assert days_text(order) == "None (credit only)"


@pytest.mark.parametrize(
    ("provider", "channel", "label"),
    [
        ("sandbox", "web", "Test payment (sandbox)"),
        ("stripe", "web", "Card"),
        ("paypal", "web", "PayPal"),
        ("voucher", "voucher", "Voucher"),
        ("balance", "auto", "Account balance"),
        ("admin", "admin", "Added by staff"),
        ("sandbox", "agent", "Paid by agent"),
        ("mystery", "web", "Other payment method"),
    ],
)
def test_payment_method_is_named_never_coded(
    owner_client: Client, order: Any, provider: str, channel: str, label: str
) -> None:
    # given an order paid through `provider` on `channel`
    order.payment_provider = provider
    order.channel = channel
    order.save(update_fields=["payment_provider", "channel"])

    # when the owner opens the receipt
    html = detail(owner_client, order)

    # then the method has its name
    assert payment_method_label(order) == label
    assert f'data-fact="payment">{label}</dd>' in html


def test_a_plugged_in_provider_names_itself(settings: Any) -> None:
    # given a provider configured by class path
    settings.PAYMENT_PROVIDER_CLASSES = {"stripe2": "leb.payments.providers.paypal.PayPalProvider"}

    # when / then its own label is used
    assert provider_label("stripe2") == "PayPal"


def test_method_label_is_translated(owner_client: Client, order: Any) -> None:
    # given the owner reads Simplified Chinese
    owner_client.cookies["django_language"] = "zh-hans"

    # when they open the receipt
    html = detail(owner_client, order)

    # then the sandbox is named in Chinese
    assert "测试支付\uff08沙盒\uff09" in html  # full-width brackets, as Chinese text has


def test_seller_is_the_operator_by_default(owner_client: Client, order: Any, settings: Any) -> None:
    # given an operator name
    settings.OPERATOR_NAME = "Keep Mobile Ltd"

    # when the owner opens the receipt
    html = detail(owner_client, order)

    # then the operator is the seller
    assert 'data-fact="seller">Keep Mobile Ltd</dd>' in html


@pytest.mark.parametrize(
    ("actor", "quote_name", "text"),
    [
        ("agent:Wing Fat Telecom", "", "Authorised agent: Wing Fat Telecom"),
        ("", "Sun Mobile Shop", "Authorised agent: Sun Mobile Shop"),
        ("", "", "Authorised agent"),
    ],
)
def test_agent_sales_name_the_agent(order: Any, actor: str, quote_name: str, text: str) -> None:
    # given an order an agent sold
    order.channel = "agent"
    order.actor = actor
    if quote_name:
        order.quote = dict(order.quote, agent_name=quote_name)
    order.save(update_fields=["channel", "actor", "quote"])

    # when / then
    assert seller_text(order) == text


def test_verify_page_states_the_days_really_added(anonymous: Client, order: Any) -> None:
    # given a capped top-up
    capped(order, added=180)
    path = reverse("receipts:verify", args=[order.receipt_number, signing.signature(order)])

    # when anybody checks it
    html = anonymous.get(path).content.decode()

    # then the days match the receipt
    assert "180 days (plan: 365 days; capped)" in html


# --- Guest links -----------------------------------------------------------------


def test_guest_link_shows_the_receipt_without_owner_details(anonymous: Client, order: Any) -> None:
    # given a guest's signed link
    url = guest_path(order)

    # when someone with no account opens it
    response = anonymous.get(url)

    # then the receipt is there, with the number's last digits and no reference
    assert response.status_code == 200
    html = response.content.decode()
    assert order.receipt_number in html and "HK$50.00" in html
    assert f"ending in {order.line.msisdn[-4:]}" in html
    assert order.payment_reference not in html
    assert guest_path(order, pdf=True).split("/receipt.pdf")[0] in html
    assert "no-store" in response["Cache-Control"]


def test_guest_pdf_link_works(anonymous: Client, order: Any) -> None:
    # given / when
    response = anonymous.get(guest_path(order, pdf=True))

    # then
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


@pytest.mark.parametrize("name", ["receipts:guest", "receipts:guest_pdf"])
def test_tampered_guest_link_is_refused_clearly(anonymous: Client, order: Any, name: str) -> None:
    # given a link with one character of the signature changed
    token = signing.guest_token(order)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")

    # when it is opened
    response = anonymous.get(reverse(name, args=[forged]))

    # then it is a clear "not valid", not an error
    assert response.status_code == 404
    assert "This receipt link is not valid." in response.content.decode()


def test_a_link_naming_another_receipt_is_refused(anonymous: Client, order: Any) -> None:
    # given a genuine token whose receipt number was edited
    token = signing.guest_token(order)
    edited = token.replace(order.receipt_number, "2026-0000999", 1)

    # when / then
    response = anonymous.get(reverse("receipts:guest", args=[edited]))
    assert response.status_code == 404


def test_expired_guest_link_is_refused_clearly(
    anonymous: Client, order: Any, now: datetime
) -> None:
    # given a link issued now
    url = guest_path(order)

    # when it is opened after RECEIPT_GUEST_LINK_DAYS
    with clock.frozen(now + timedelta(days=31)):
        response = anonymous.get(url)

    # then it says it has expired
    assert response.status_code == 403
    assert "This receipt link has expired." in response.content.decode()


def test_owner_link_still_works_alongside_guest_links(owner_client: Client, order: Any) -> None:
    # given a guest link exists for the order
    guest_path(order)

    # when the owner opens their own receipt page
    html = detail(owner_client, order)

    # then it shows the full number and the reference
    assert "+852 94" in html and order.payment_reference in html
