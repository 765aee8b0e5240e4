"""POST /api/v1/vouchers/redeem: anyone may top up any number; problems
for every refusal; the balance only for the line's owner."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.test import Client

from leb.topups.models import TopUpOrder
from leb.vouchers import pins

pytestmark = pytest.mark.django_db
URL = "/api/v1/vouchers/redeem"


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""


def post(client: Client, data: dict[str, Any], **extra: Any) -> Any:
    return client.post(URL, json.dumps(data), content_type="application/json", **extra)


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    return body


def test_a_guest_redeems_and_gets_no_balance(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any], owner: Any
) -> None:
    # given
    made = make_batch()
    line = make_line(owner=owner)

    # when
    response = post(anonymous, {"number": line.msisdn, "pin": made.pins[0]})

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    order = TopUpOrder.objects.get()
    assert body["serial"] == made.serials[0]
    assert body["order_id"] == str(order.public_id)
    assert body["receipt_number"] == order.receipt_number
    assert "/receipts/verify/" in body["receipt_url"]
    assert body["valid_until_after"]
    assert body["balance"] is None
    assert body["replayed"] is False


def test_the_owner_gets_the_balance_and_the_receipt_page(
    owner_client: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any], owner: Any
) -> None:
    # given
    made = make_batch(value=10000)
    line = make_line(owner=owner)

    # when
    response = post(owner_client, {"number": line.msisdn, "pin": made.pins[0]})
    again = post(owner_client, {"number": line.msisdn, "pin": made.pins[0]})

    # then
    body = response.json()
    assert body["balance"]["amount"] == 10000
    assert body["balance"]["currency"] == "HKD"
    assert f"/receipts/{body['receipt_number']}/" in body["receipt_url"]
    assert again.json()["replayed"] is True
    assert TopUpOrder.objects.count() == 1


def test_a_signed_in_outsider_gets_no_balance(
    outsider_client: Client,
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    owner: Any,
) -> None:
    # given
    made = make_batch()
    line = make_line(owner=owner)

    # when
    response = post(outsider_client, {"number": line.msisdn, "pin": made.pins[0]})

    # then
    assert response.status_code == 200
    assert response.json()["balance"] is None


@pytest.mark.parametrize("pin", ["1234", "12345678abcdefgh"])
def test_a_malformed_pin_is_a_field_problem(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any], pin: str
) -> None:
    # given
    make_batch()
    line = make_line()

    # when
    response = post(anonymous, {"number": line.msisdn, "pin": pin})

    # then
    body = problem(response, 422, "pin_format")
    assert body["errors"][0]["field"] == "pin"


def test_an_unknown_pin_is_a_problem(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any]
) -> None:
    # given
    make_batch()
    line = make_line()

    # when
    response = post(anonymous, {"number": line.msisdn, "pin": pins.new_pin(with_check_digit=True)})

    # then
    problem(response, 422, "pin_invalid")
    assert not TopUpOrder.objects.exists()


def test_unknown_and_malformed_numbers(anonymous: Client, make_batch: Callable[..., Any]) -> None:
    # given
    made = make_batch()

    # when
    unknown = post(anonymous, {"number": "+85294999999", "pin": made.pins[0]})
    malformed = post(anonymous, {"number": "12", "pin": made.pins[0]})
    missing = post(anonymous, {"pin": made.pins[0]})

    # then
    problem(unknown, 404, "line_not_found")
    body = problem(malformed, 422, malformed.json()["code"])
    assert body["errors"][0]["field"] == "number"
    problem(missing, 422, "validation_error")


def test_another_currency_is_a_conflict(
    anonymous: Client,
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    uk_policy: Any,
) -> None:
    # given
    made = make_batch()
    line = make_line(policy=uk_policy, currency="GBP")

    # when
    response = post(anonymous, {"number": line.msisdn, "pin": made.pins[0]})

    # then
    problem(response, 409, "currency_mismatch")


def test_locked_entry_is_429_with_retry_after(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any]
) -> None:
    # given
    made = make_batch()
    line = make_line()
    for _ in range(5):
        post(anonymous, {"number": line.msisdn, "pin": pins.new_pin(with_check_digit=True)})

    # when
    response = post(anonymous, {"number": line.msisdn, "pin": made.pins[0]})

    # then
    problem(response, 429, "locked")
    assert response["Retry-After"] == str(15 * 60)
    assert not TopUpOrder.objects.exists()


def test_a_session_without_csrf_is_refused(
    owner: Any, make_batch: Callable[..., Any], make_line: Callable[..., Any]
) -> None:
    # given
    made = make_batch()
    line = make_line(owner=owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner, backend="leb.accounts.backends.EmailOrPhoneBackend")

    # when
    response = post(client, {"number": line.msisdn, "pin": made.pins[0]})

    # then
    problem(response, 403, "csrf_failed")
    assert not TopUpOrder.objects.exists()


def _keep_plan() -> Any:
    from leb.catalog.models import Plan

    return Plan.objects.create(
        code="hk-keep-180",
        name_en="Keep 180 days",
        name_zh_hans="保号180天",
        name_zh_hant="保號180日",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=180,
    )


def test_the_response_says_the_days_really_added(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    from datetime import timedelta

    # given a line valid 300 more days (365-day cap) and a 180-day voucher
    made = make_batch(plan=_keep_plan(), currency=None)
    line = make_line()
    line.valid_until = now + timedelta(days=300)
    line.save(update_fields=["valid_until"])

    # when
    body = post(anonymous, {"number": line.msisdn, "pin": made.pins[0]}).json()

    # then
    assert (body["days_added"], body["plan_days"], body["adds_fewer_days"]) == (65, 180, True)
    assert body["days_added_text"] == (
        "This top-up added 65 days, not 180: the number is now valid until June 1, 2027 "
        "(the most this line allows is 365 days from today)."
    )


def test_a_voucher_that_would_add_nothing_is_a_422_and_stays_unused(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    from datetime import timedelta

    from leb.vouchers.models import Voucher, VoucherState

    # given a days-only voucher and a line already valid until its cap
    made = make_batch(plan=_keep_plan(), currency=None)
    line = make_line()
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])

    # when
    response = post(anonymous, {"number": line.msisdn, "pin": made.pins[0]})

    # then
    body = problem(response, 422, "adds_nothing")
    assert "Your voucher was not used" in body["detail"]
    assert Voucher.objects.get(serial=made.serials[0]).state == VoucherState.ACTIVE
    assert not TopUpOrder.objects.exists()
