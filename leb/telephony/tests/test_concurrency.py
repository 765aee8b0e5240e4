"""The same voucher entered on the hotline and over USSD at the same moment,
each request on its own PostgreSQL connection: one top-up, one refusal.
And the same plan bought twice from the balance at once: one charge."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client

from leb.catalog.models import Plan
from leb.testing import race_all as race
from leb.testing import topup
from leb.topups.balance import BalanceRefused, do_buy_plan_from_balance
from leb.topups.models import OrderStatus, TopUpOrder
from leb.vouchers.models import Voucher, VoucherState

from .caller import Phone

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


@pytest.mark.parametrize("round_", range(3))
def test_same_pin_on_ivr_and_ussd_at_once(
    make_line: Any, owner: Any, make_pins: Any, call: Any, ledger_ok: Any, round_: int
) -> None:
    # given two lines, one calling the hotline and one on USSD, at the PIN prompt
    caller_line = make_line(owner=owner)
    ussd_line = make_line()
    pin = make_pins(quantity=1)[0]
    fake = call(caller=caller_line.msisdn)
    fake.client = Client()
    fake.start()
    fake.press("3")
    fake.press("1")
    phone = Phone(ussd_line.msisdn)
    # when both enter the same PIN at the same moment
    results = race([lambda: fake.press(pin), lambda: phone.screen("2", pin)])
    # then exactly one line got the top-up
    assert not [r for r in results if isinstance(r, Exception)], results
    ivr_won = "Thank you. Your top-up is complete." in results[0].says
    ussd_won = results[1].startswith("END Top-up complete.")
    assert ivr_won != ussd_won, results
    assert TopUpOrder.objects.filter(status=OrderStatus.FULFILLED, channel="voucher").count() == 1
    voucher = Voucher.objects.get()
    assert voucher.state == VoucherState.REDEEMED
    assert voucher.order is not None
    assert voucher.order.line_id == (caller_line.pk if ivr_won else ussd_line.pk)
    ledger_ok()


def test_two_purchases_from_balance_at_once_charge_once(
    make_line: Any, hk_policy: Any, now: Any, ledger_ok: Any
) -> None:
    # given HK$100 on the wallet and a HK$60 plan: enough for one purchase only
    hk_policy.plans_from_balance = True
    hk_policy.save()
    line = make_line()
    credit = Plan.objects.create(
        code="credit-100",
        name_en="c",
        name_zh_hans="c",
        name_zh_hant="c",
        currency="HKD",
        price=10000,
        credit=10000,
        validity_days=30,
    )
    keep = Plan.objects.create(
        code="keep-60",
        name_en="k",
        name_zh_hans="k",
        name_zh_hant="k",
        currency="HKD",
        price=6000,
        credit=0,
        validity_days=90,
    )
    topup(line, credit, now=now)

    def buy(key: str) -> Any:
        return do_buy_plan_from_balance(
            line=line, plan=keep, channel="ussd", idempotency_key=key, now=now
        )

    # when two sessions buy at the same moment
    results = race([lambda: buy("a"), lambda: buy("b")])
    # then one bought it and the other was told the balance is short
    refused = [r for r in results if isinstance(r, BalanceRefused)]
    assert len(refused) == 1 and refused[0].code == "balance_short", results
    assert TopUpOrder.objects.filter(payment_provider="balance").count() == 1
    line.wallet.refresh_from_db()
    assert line.wallet.balance == 4000
    ledger_ok()
