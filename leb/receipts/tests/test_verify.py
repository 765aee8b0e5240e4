from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.receipts import signing

pytestmark = pytest.mark.django_db


def verify_url(receipt_number: str, signature: str) -> str:
    return reverse("receipts:verify", args=[receipt_number, signature])


def test_genuine_receipt_shows_only_non_personal_facts(anonymous: Client, order: Any) -> None:
    # given the signed link from a real receipt
    url = verify_url(order.receipt_number, signing.signature(order))

    # when anyone opens it, signed in or not
    response = anonymous.get(url)

    # then leb confirms it with the public facts and nothing personal
    assert response.status_code == 200
    html = response.content.decode()
    assert "This receipt is genuine." in html
    assert order.receipt_number in html
    assert "HK$50.00" in html and "HKD" in html
    assert "180 days" in html
    msisdn = order.line.msisdn
    assert f"ending in {msisdn[-4:]}" in html
    assert msisdn not in html and msisdn[-8:] not in html
    assert f"ref-{order.pk}" not in html and "owner@example.com" not in html
    assert response["X-Robots-Tag"].startswith("noindex")


def test_tampered_signature_is_not_genuine(anonymous: Client, order: Any) -> None:
    # given a signature with one character changed
    good = signing.signature(order)
    bad = ("A" if good[0] != "A" else "B") + good[1:]

    # when it is checked
    response = anonymous.get(verify_url(order.receipt_number, bad))

    # then leb says it is not genuine
    assert response.status_code == 404
    html = response.content.decode()
    assert "This receipt is not genuine." in html
    assert "HK$50.00" not in html


def test_signature_of_another_receipt_is_not_genuine(
    anonymous: Client, order: Any, line: Any, make_order: Any, now: Any
) -> None:
    # given a second receipt, and the first one's signature on its number
    other = make_order(line, at=now + timedelta(minutes=5))

    # when the borrowed signature is checked
    response = anonymous.get(verify_url(other.receipt_number, signing.signature(order)))

    # then it does not verify
    assert response.status_code == 404


def test_changed_amount_breaks_the_signature(order: Any) -> None:
    # given a signature taken before someone edits the stored amount
    signature = signing.signature(order)

    # when the amount changes
    order.price += 100

    # then the old signature no longer matches
    assert not signing.is_genuine(order, signature)


@pytest.mark.parametrize(
    "receipt_number,signature",
    [("2026-9999999", "x" * 43), ("not-a-number", "whatever"), ("2026-0000001", "")],
)
def test_unknown_receipt_is_not_genuine(
    anonymous: Client, order: Any, receipt_number: str, signature: str
) -> None:
    # given a receipt number leb never issued (or garbage)
    url = f"/receipts/verify/{receipt_number}/{signature}/"

    # when it is checked
    response = anonymous.get(url)

    # then it is not genuine, never a server error
    assert response.status_code == 404
    if signature:
        assert "This receipt is not genuine." in response.content.decode()


def test_verification_survives_a_secret_key_rotation(
    anonymous: Client, order: Any, settings: Any
) -> None:
    # given a receipt signed with the old key, and the key rotated with a fallback
    signature = signing.signature(order)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-that-is-long-enough-for-prod"

    # when the printed link is checked
    response = anonymous.get(verify_url(order.receipt_number, signature))

    # then it still verifies
    assert response.status_code == 200


def test_signed_in_outsider_can_verify(outsider_client: Client, order: Any) -> None:
    # given a signed-in user who does not own the receipt
    url = verify_url(order.receipt_number, signing.signature(order))

    # when they check it
    response = outsider_client.get(url)

    # then verification is public
    assert response.status_code == 200


def test_refunded_receipt_verifies_and_says_refunded(anonymous: Client, order: Any) -> None:
    # given a receipt whose top-up was refunded later
    from leb.topups.actions import do_refund_order

    signature = signing.signature(order)
    do_refund_order(order, reason="test", actor="staff")

    # when its link is checked
    response = anonymous.get(verify_url(order.receipt_number, signature))

    # then it is genuine but flagged refunded
    assert response.status_code == 200
    assert "This top-up was refunded." in response.content.decode()
