from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from leb.common import clock
from leb.topups.actions import do_create_order

pytestmark = pytest.mark.django_db

CARD = {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123", "name": "Chan Tai Man"}


@pytest.fixture(autouse=True)
def frozen(now: datetime) -> Any:
    with clock.frozen(now):
        yield


def order_for(
    make_line: Any, hkd_plan: Any, now: datetime, customer: Any = None, key: str = "k"
) -> Any:
    return do_create_order(
        line=make_line(owner=customer),
        channel="web",
        plan=hkd_plan,
        customer=customer,
        idempotency_key=f"api-pay-{key}",
        now=now,
    )


def test_guest_starts_a_payment_pays_in_the_browser_and_polls(
    make_line: Any, hkd_plan: Any, now: datetime, ledger_ok: Any
) -> None:
    # given a guest's order made through the API
    order = order_for(make_line, hkd_plan, now)
    api = Client()
    # when the app starts a sandbox payment
    started = api.post(
        f"/api/v1/orders/{order.public_id}/payments",
        {"provider": "sandbox"},
        content_type="application/json",
    )
    # then it gets the checkout page to open
    assert started.status_code == 201, started.content
    body = started.json()
    assert body["status"] == "pending" and body["amount"]["amount"] == 5000
    assert body["checkout_url"].endswith(f"/pay/sandbox/{body['attempt']}/")
    # when the payer pays in a browser that has no session with leb
    browser = Client()
    paid = browser.post(f"/pay/sandbox/{body['attempt']}/", CARD)
    assert paid.status_code == 302
    result = browser.get(paid["Location"])
    assert result.status_code == 200 and 'data-state="success"' in result.content.decode()
    # then polling the API shows the outcome
    polled = api.get(f"/api/v1/payments/{body['attempt']}").json()
    assert (polled["status"], polled["order_status"]) == ("succeeded", "fulfilled")
    ledger_ok()


def test_a_customers_order_is_theirs_alone(make_line: Any, hkd_plan: Any, now: datetime) -> None:
    owner = get_user_model().objects.create_user("api-payer", password="x-long-pass-1")
    order = order_for(make_line, hkd_plan, now, customer=owner, key="own")
    outsider = Client()
    outsider.force_login(
        get_user_model().objects.create_user("api-outsider", password="x-long-pass-2")
    )
    for client in (outsider, Client()):
        response = client.post(
            f"/api/v1/orders/{order.public_id}/payments", {}, content_type="application/json"
        )
        assert response.status_code in (401, 403, 404)
    mine = Client()
    mine.force_login(owner)
    started = mine.post(
        f"/api/v1/orders/{order.public_id}/payments", {}, content_type="application/json"
    )
    assert started.status_code == 201
    attempt = started.json()["attempt"]
    assert outsider.get(f"/api/v1/payments/{attempt}").status_code == 404
    assert mine.get(f"/api/v1/payments/{attempt}").status_code == 200


@pytest.mark.parametrize(("provider", "status"), [("nope", 422)])
def test_bad_provider_and_unknown_ids(
    make_line: Any, hkd_plan: Any, now: datetime, provider: str, status: int
) -> None:
    order = order_for(make_line, hkd_plan, now, key="bad")
    response = Client().post(
        f"/api/v1/orders/{order.public_id}/payments",
        {"provider": provider},
        content_type="application/json",
    )
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert Client().get("/api/v1/payments/not-a-uuid").status_code == 404
    assert (
        Client()
        .post("/api/v1/orders/not-a-uuid/payments", {}, content_type="application/json")
        .status_code
        == 404
    )
