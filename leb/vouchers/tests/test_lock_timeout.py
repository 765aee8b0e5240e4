# ruff: noqa: RUF001
"""A voucher redemption that meets a line row held by another transaction
past the lock timeout: the subscriber is told to try again, nothing is half
written (the voucher is still unused, no order, no ledger entry), and the
retry redeems it once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from leb.ledger.models import TransferGroup
from leb.lines.models import Line
from leb.testing import row_held, short_lock_timeout
from leb.topups.models import TopUpOrder
from leb.vouchers.models import Voucher, VoucherState

pytestmark = [
    pytest.mark.usefixtures("frozen_now"),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


def untouched(line: Any) -> None:
    assert Voucher.objects.get().state == VoucherState.ACTIVE
    assert not TopUpOrder.objects.exists()
    assert not TransferGroup.objects.filter(idempotency_key__startswith="voucher:").exists()


def test_web_redemption_waits_then_says_try_again_and_the_retry_redeems_once(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], ledger_ok: Any
) -> None:
    made = make_batch(quantity=1)
    line = make_line()
    browser = Client()
    short_lock_timeout()
    # when the line's row is held elsewhere past the lock timeout
    with row_held(Line, line.pk):
        response = browser.post(
            "/vouchers/redeem/",
            {"number": line.msisdn, "pin": made.pins[0]},
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        )
    # then the page says, translated, that nothing changed and to try again
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "处理时间比预期长。没有任何更改，请重试。" in response.content.decode()
    untouched(line)
    ledger_ok()
    # when the subscriber tries again
    short_lock_timeout()
    again = browser.post("/vouchers/redeem/", {"number": line.msisdn, "pin": made.pins[0]})
    # then it is redeemed once
    assert again.status_code == 302
    assert Voucher.objects.get().state == VoucherState.REDEEMED
    assert TopUpOrder.objects.get().status == "fulfilled"
    ledger_ok()


def test_api_redemption_is_a_busy_problem_then_succeeds(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], ledger_ok: Any
) -> None:
    made = make_batch(quantity=1)
    line = make_line()
    body = json.dumps({"number": line.msisdn, "pin": made.pins[0]})
    short_lock_timeout()
    with row_held(Line, line.pk):
        response = Client().post(
            "/api/v1/vouchers/redeem",
            body,
            content_type="application/json",
            HTTP_ACCEPT_LANGUAGE="zh-hant",
        )
    assert response.status_code == 503, response.content.decode()
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "busy"
    assert response.json()["detail"] == "處理時間比預期長。沒有任何更改，請重試。"
    untouched(line)
    short_lock_timeout()
    again = Client().post("/api/v1/vouchers/redeem", body, content_type="application/json")
    assert again.status_code == 200, again.content
    assert Voucher.objects.get().state == VoucherState.REDEEMED
    ledger_ok()
