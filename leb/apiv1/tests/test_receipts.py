from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from leb.testing import topup

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_with_receipt(make_line: Any, hkd_plan: Any, now: datetime) -> tuple[Any, Any]:
    owner = get_user_model().objects.create_user("rcpt-owner", password="x-long-pass-1")
    order = topup(make_line(owner=owner), hkd_plan, now=now)
    return owner, order


def test_owner_lists_and_reads_receipts(owner_with_receipt: tuple[Any, Any], settings: Any) -> None:
    # given
    settings.SITE_URL = "https://topup.example.com"
    owner, order = owner_with_receipt
    client = Client()
    client.force_login(owner)
    # when
    listing = client.get("/api/v1/receipts")
    one = client.get(f"/api/v1/receipts/{order.receipt_number}")
    # then
    assert listing.status_code == 200 and [r["receipt_number"] for r in listing.json()] == [
        order.receipt_number
    ]
    body = one.json()
    assert body["price"] == {"amount": 5000, "currency": "HKD", "formatted": "HK$50.00"}
    assert body["validity_days"] == 180
    assert body["pdf_url"] == f"https://topup.example.com/receipts/{order.receipt_number}.pdf"
    assert body["verify_url"].startswith("https://topup.example.com/receipts/verify/")


def test_outsider_and_anonymous_get_nothing(owner_with_receipt: tuple[Any, Any]) -> None:
    _owner, order = owner_with_receipt
    outsider = Client()
    outsider.force_login(
        get_user_model().objects.create_user("rcpt-outsider", password="x-long-pass-2")
    )
    assert outsider.get("/api/v1/receipts").json() == []
    response = outsider.get(f"/api/v1/receipts/{order.receipt_number}")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    assert Client().get("/api/v1/receipts").status_code == 401
