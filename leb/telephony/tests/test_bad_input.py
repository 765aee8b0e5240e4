"""The shared bad-input corpus on the phone: USSD text and IVR digits. Each
gets a spoken or shown answer (a re-prompt or a clear END), never a 500, and
nothing is charged or written."""

from __future__ import annotations

from typing import Any

import pytest

from leb.common.tests.bad_input import cases
from leb.ledger.models import TransferGroup
from leb.topups.models import TopUpOrder
from leb.vouchers.models import Voucher

from .caller import Phone
from .test_ivr import _menu

pytestmark = pytest.mark.django_db

# USSD joins inputs with "*": a value holding "*" is several inputs, as on a handset.
USSD_INPUTS = cases("text", "pins", "numbers")
IVR_DIGITS = cases("pins", "numbers", "text")


def nothing_written() -> None:
    assert not TopUpOrder.objects.exists()
    assert not TransferGroup.objects.filter(idempotency_key__startswith="voucher:").exists()
    assert not Voucher.objects.filter(state="redeemed").exists()


def test_ussd_voucher_pin_answers_every_bad_input_in_words(line: Any) -> None:
    for case, value in USSD_INPUTS:
        response = Phone(line.msisdn).send("2", value)
        assert response.status_code == 200, case
        body = response.content.decode()
        assert body.startswith(("CON ", "END ")), case
        assert "<script>" not in body, case
    nothing_written()


def test_ussd_refusal_in_chinese(line: Any) -> None:
    phone = Phone(line.msisdn, language="zh-hans")
    body = phone.screen("2", "\uff11\uff12\uff13\uff14")
    assert body.startswith("END ")
    assert any("\u4e00" <= c <= "\u9fff" for c in body)


def test_ivr_digits_reprompt_for_every_bad_input(call: Any, line: Any) -> None:
    for case, value in IVR_DIGITS:
        fake = call()
        _menu(fake, "en")
        fake.press("1")
        reply = fake.press(value)
        assert reply.status == 200, case
        # a re-prompt (another Gather) or a goodbye, always in words
        assert reply.says, case
    nothing_written()
