from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.receipts import signing

pytestmark = pytest.mark.django_db


def detail_url(order: Any) -> str:
    return reverse("receipts:detail", args=[order.receipt_number])


def test_owner_sees_the_receipt_facts(owner_client: Client, order: Any) -> None:
    # given a fulfilled HK$50 / 180 days top-up on the owner's line
    url = detail_url(order)

    # when the owner opens the receipt
    response = owner_client.get(url)

    # then every fact of the top-up is on the page
    assert response.status_code == 200
    html = response.content.decode()
    assert order.receipt_number in html
    assert "+852 94" in html
    assert "HK$50 / 180 days" in html
    assert "HK$50.00" in html
    assert "List price" in html and "Price paid" in html and "Credit" in html
    assert "180 days" in html
    assert "Web" in html
    assert f"ref-{order.pk}" in html and "sandbox" in html
    assert "<svg" in html
    assert f"https://leb.example/receipts/verify/{order.receipt_number}/" in html
    assert response["Cache-Control"].count("no-store") == 1


def test_receipt_shows_discount_and_restore_fee_rows(
    owner_client: Client, order: Any, make_order: Any, line: Any
) -> None:
    # given an order whose frozen quote has a discount, a bonus and a restore fee
    quote = dict(order.quote, discount=500, price=4500, bonus_credit=200, restore_fee=1000)
    order.quote = quote
    order.save(update_fields=["quote"])

    # when the owner opens the receipt
    html = owner_client.get(detail_url(order)).content.decode()

    # then the extra rows are shown with their signs
    assert "Discount" in html and "-HK$5.00" in html
    assert "Bonus credit" in html and "HK$2.00" in html
    assert "Restore fee" in html and "-HK$10.00" in html


def test_line_owner_sees_an_order_placed_by_someone_else(
    owner_client: Client, line: Any, make_order: Any
) -> None:
    # given an order on the owner's line with no customer account
    order = make_order(line, customer=None)

    # when the line's owner opens it
    response = owner_client.get(detail_url(order))

    # then it is theirs to see
    assert response.status_code == 200


def test_customer_sees_a_receipt_for_a_line_they_do_not_own(
    outsider: Any, outsider_client: Client, line: Any, make_order: Any
) -> None:
    # given the outsider paid for a top-up of the owner's line
    order = make_order(line, customer=outsider)

    # when the outsider opens the receipt
    response = outsider_client.get(detail_url(order))

    # then the paying customer sees it
    assert response.status_code == 200


@pytest.mark.parametrize("name", ["receipts:detail", "receipts:pdf"])
def test_outsider_gets_404(outsider_client: Client, order: Any, name: str) -> None:
    # given someone else's receipt
    url = reverse(name, args=[order.receipt_number])

    # when an outsider asks for it
    response = outsider_client.get(url)

    # then it does not exist for them
    assert response.status_code == 404


@pytest.mark.parametrize(
    "name,args",
    [
        ("receipts:detail", True),
        ("receipts:pdf", True),
        ("receipts:history", False),
        ("receipts:export_csv", False),
    ],
)
def test_anonymous_is_sent_to_login(anonymous: Client, order: Any, name: str, args: bool) -> None:
    # given a visitor who is not signed in
    url = reverse(name, args=[order.receipt_number] if args else [])

    # when they open a personal receipt page
    response = anonymous.get(url)

    # then they are asked to sign in first
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_unknown_receipt_is_404(owner_client: Client, order: Any) -> None:
    # given a receipt number that was never issued
    url = reverse("receipts:detail", args=["2026-9999999"])

    # when the owner opens it
    response = owner_client.get(url)

    # then it is not found
    assert response.status_code == 404


def test_refunded_receipt_says_so(owner_client: Client, order: Any) -> None:
    # given a refunded top-up
    from leb.topups.actions import do_refund_order

    do_refund_order(order, reason="test", actor="staff")

    # when the owner opens the receipt
    html = owner_client.get(detail_url(order)).content.decode()

    # then it is marked refunded
    assert "This top-up was refunded." in html


def test_receipt_page_in_traditional_chinese(owner_client: Client, order: Any) -> None:
    # given the owner reads in Traditional Chinese
    owner_client.cookies["django_language"] = "zh-hant"

    # when they open the receipt
    html = owner_client.get(detail_url(order)).content.decode()

    # then the plan has its Chinese name
    assert "50港元 / 180日" in html


def test_receipt_page_query_budget(
    owner_client: Client, order: Any, django_assert_max_num_queries: Any
) -> None:
    # given a receipt
    url = detail_url(order)

    # when the owner opens it
    # then a handful of queries do it (session, user, order, banner)
    with django_assert_max_num_queries(6):
        assert owner_client.get(url).status_code == 200


def test_qr_points_at_a_verification_url_that_works(anonymous: Client, order: Any) -> None:
    # given the verification URL printed in the QR code
    path = reverse("receipts:verify", args=[order.receipt_number, signing.signature(order)])

    # when anybody opens it
    response = anonymous.get(path)

    # then it confirms the receipt
    assert response.status_code == 200
    assert "This receipt is genuine." in response.content.decode()
