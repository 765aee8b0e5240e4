"""The redemption page: guests by number, subscribers by their own lines;
refusals as form errors; the balance only for the line's owner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.topups.models import TopUpOrder
from leb.vouchers import pins
from leb.vouchers.models import Voucher, VoucherState

pytestmark = pytest.mark.django_db
URL = "/vouchers/redeem/"


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""


def test_the_urls() -> None:
    assert reverse("vouchers:redeem") == URL
    assert reverse("vouchers:done") == "/vouchers/redeem/done/"


def test_a_guest_redeems_by_number_and_sees_no_balance(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any], owner: Any
) -> None:
    # given someone else's line
    made = make_batch()
    line = make_line(owner=owner)

    # when
    response = anonymous.post(URL, {"number": line.msisdn, "pin": made.pins[0]})
    page = anonymous.get(response["Location"])

    # then
    assert response.status_code == 302
    assert response["Location"] == "/vouchers/redeem/done/"
    assert page.status_code == 200
    order = TopUpOrder.objects.get()
    body = page.content.decode()
    assert order.receipt_number and order.receipt_number in body
    assert made.serials[0] in body
    assert "Balance" not in body
    assert "/receipts/verify/" in body
    assert order.customer_id is None


def test_the_owner_picks_a_line_and_sees_the_balance(
    owner_client: Client,
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    owner: Any,
) -> None:
    # given
    made = make_batch(value=10000)
    line = make_line(owner=owner)
    form = owner_client.get(URL)

    # when
    response = owner_client.post(URL, {"line": str(line.pk), "pin": made.pins[0]}, follow=True)

    # then
    assert line.msisdn[-4:] in form.content.decode()
    body = response.content.decode()
    assert "Balance" in body
    assert "HK$100.00" in body
    order = TopUpOrder.objects.get()
    assert order.customer_id == owner.pk
    assert reverse("receipts:detail", args=[order.receipt_number]) in body


def test_a_signed_in_outsider_may_top_up_but_not_see_the_balance(
    outsider_client: Client,
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    owner: Any,
) -> None:
    # given
    made = make_batch()
    line = make_line(owner=owner)

    # when
    response = outsider_client.post(URL, {"number": line.msisdn, "pin": made.pins[0]}, follow=True)

    # then
    assert response.status_code == 200
    assert "Balance" not in response.content.decode()
    assert Voucher.objects.get(serial=made.serials[0]).line_id == line.pk


def test_an_outsider_cannot_pick_someone_elses_line_by_id(
    outsider_client: Client,
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    owner: Any,
    outsider: Any,
) -> None:
    # given
    made = make_batch()
    make_line(owner=outsider)
    line = make_line(owner=owner)

    # when
    response = outsider_client.post(URL, {"line": str(line.pk), "pin": made.pins[0]})

    # then
    assert response.status_code == 400
    assert not TopUpOrder.objects.exists()


@pytest.mark.parametrize(
    ("pin", "code", "status"),
    [
        ("1234", "pin_format", 422),
        ("abcd efgh ijkl mnop", "pin_format", 422),
        (None, "pin_invalid", 422),
    ],
)
def test_refusals_are_form_errors(
    anonymous: Client,
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    pin: str | None,
    code: str,
    status: int,
) -> None:
    # given
    make_batch()
    line = make_line()

    # when
    response = anonymous.post(
        URL, {"number": line.msisdn, "pin": pin or pins.new_pin(with_check_digit=True)}
    )

    # then
    assert response.status_code == status
    assert 'class="error"' in response.content.decode()
    assert not TopUpOrder.objects.exists()


def test_unknown_number_and_missing_fields(
    anonymous: Client, make_batch: Callable[..., Any]
) -> None:
    # given
    made = make_batch()

    # when
    unknown = anonymous.post(URL, {"number": "+85294999999", "pin": made.pins[0]})
    bad = anonymous.post(URL, {"number": "12", "pin": made.pins[0]})
    empty = anonymous.post(URL, {"number": "", "pin": ""})

    # then
    assert unknown.status_code == 404
    assert "could not find" in unknown.content.decode()
    assert bad.status_code == 400
    assert empty.status_code == 400
    assert "Enter the PIN printed on the voucher." in empty.content.decode()
    assert Voucher.objects.filter(state=VoucherState.ACTIVE).count() == 5


def test_five_wrong_pins_lock_the_page(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any]
) -> None:
    # given
    made = make_batch()
    line = make_line()
    for _ in range(5):
        anonymous.post(URL, {"number": line.msisdn, "pin": pins.new_pin(with_check_digit=True)})

    # when
    response = anonymous.post(URL, {"number": line.msisdn, "pin": made.pins[0]})

    # then
    assert response.status_code == 429
    assert "locked" in response.content.decode()
    assert not TopUpOrder.objects.exists()


def test_the_form_needs_a_csrf_token(
    make_batch: Callable[..., Any], make_line: Callable[..., Any]
) -> None:
    # given
    made = make_batch()
    line = make_line()
    client = Client(enforce_csrf_checks=True)

    # when
    response = client.post(URL, {"number": line.msisdn, "pin": made.pins[0]})

    # then
    assert response.status_code == 403
    assert not TopUpOrder.objects.exists()


def test_the_pages_have_no_inline_script_or_style(anonymous: Client) -> None:
    # when
    body = anonymous.get(URL).content.decode()

    # then
    assert "<script>" not in body
    assert "style=" not in body
    assert "csrfmiddlewaretoken" in body


def test_the_result_page_without_a_redemption_goes_back_to_the_form(anonymous: Client) -> None:
    # when
    response = anonymous.get("/vouchers/redeem/done/")

    # then
    assert response.status_code == 302
    assert response["Location"] == URL


def test_the_result_is_not_shown_to_another_session(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any]
) -> None:
    # given
    made = make_batch()
    line = make_line()
    anonymous.post(URL, {"number": line.msisdn, "pin": made.pins[0]})

    # when
    response = Client().get("/vouchers/redeem/done/")

    # then
    assert response.status_code == 302


def test_the_page_is_translated(anonymous: Client) -> None:
    # when
    response = anonymous.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hant")

    # then
    assert response.status_code == 200


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


def test_the_done_page_says_the_days_really_added(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    from datetime import timedelta

    # given a line valid 300 more days (365-day cap) and a 180-day voucher
    made = make_batch(plan=_keep_plan(), currency=None)
    line = make_line()
    line.valid_until = now + timedelta(days=300)
    line.save(update_fields=["valid_until"])

    # when
    page = anonymous.post(URL, {"number": line.msisdn, "pin": made.pins[0]}, follow=True)

    # then
    body = page.content.decode()
    assert (
        "This top-up added 65 days, not 180: the number is now valid until June 1, 2027 "
        "(the most this line allows is 365 days from today)." in body
    )
    assert 'data-days-added="65"' in body


def test_a_voucher_that_would_add_nothing_is_refused_and_stays_unused(
    anonymous: Client, make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    from datetime import timedelta

    # given a days-only voucher and a line already valid until its cap
    made = make_batch(plan=_keep_plan(), currency=None)
    line = make_line()
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])

    # when
    response = anonymous.post(URL, {"number": line.msisdn, "pin": made.pins[0]})

    # then the page says so and the voucher can still be used
    assert response.status_code == 409
    assert "Your voucher was not used" in response.content.decode()
    assert Voucher.objects.get(serial=made.serials[0]).state == VoucherState.ACTIVE
    assert not TopUpOrder.objects.exists()
