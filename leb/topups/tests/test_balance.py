"""Buying a plan with the line's balance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from leb.ledger.models import Transfer
from leb.lines.models import LineEvent, LineEventKind, LineStatus
from leb.testing import topup
from leb.topups.balance import BalanceRefused, do_buy_plan_from_balance
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = pytest.mark.django_db


@pytest.fixture
def allowed(hk_policy: Any) -> Any:
    hk_policy.plans_from_balance = True
    hk_policy.save()
    return hk_policy


@pytest.fixture
def funded(make_line: Any, allowed: Any, now: Any) -> Any:
    """A line with HK$100 on its wallet (a free-credit plan of 100 topped up)."""
    from leb.catalog.models import Plan

    credit_plan = Plan.objects.create(
        code="hk-credit-100",
        name_en="HK$100 credit",
        name_zh_hans="100港元话费",
        name_zh_hant="100港元話費",
        currency="HKD",
        price=10000,
        credit=10000,
        validity_days=30,
    )
    line = make_line()
    topup(line, credit_plan, now=now)
    line.refresh_from_db()
    return line


@pytest.fixture
def days_plan(db: Any) -> Any:
    """A validity-only plan: HK$50 for 180 days, no credit."""
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


def _wallet(line: Any) -> int:
    line.wallet.refresh_from_db()
    return int(line.wallet.balance)


def test_buy_plan_from_balance(funded: Any, days_plan: Any, now: Any, ledger_ok: Any) -> None:
    # given HK$100 on the wallet, valid until 2026-07-31
    before = funded.valid_until
    # when a HK$50 / 180 days plan is paid from it
    order = do_buy_plan_from_balance(
        line=funded, plan=days_plan, channel="ussd", idempotency_key="k1", now=now
    )
    # then the wallet paid HK$50 to revenue and the line gained 180 days
    assert order.status == OrderStatus.FULFILLED
    assert order.channel == "ussd"
    assert order.payment_provider == "balance"
    assert order.receipt_number
    assert _wallet(funded) == 5000
    funded.refresh_from_db()
    assert funded.valid_until == before + timedelta(days=180)
    assert order.valid_until_after == funded.valid_until
    event = LineEvent.objects.filter(line=funded, kind=LineEventKind.TOPPED_UP).last()
    assert event is not None and event.data["order"] == str(order.public_id)
    revenue = Transfer.objects.filter(
        group__idempotency_key=f"{order.order_ref}:fulfil", credit_account__kind="revenue"
    )
    assert sum(t.amount for t in revenue) == 5000
    ledger_ok()


def test_plan_with_credit_gives_its_credit_back_to_the_wallet(
    funded: Any, hkd_plan: Any, now: Any, ledger_ok: Any
) -> None:
    # given the HK$50 plan that grants HK$50 of credit
    # when it is bought from the balance
    do_buy_plan_from_balance(
        line=funded, plan=hkd_plan, channel="ivr", idempotency_key="k", now=now
    )
    # then the wallet paid 50 and got 50 of credit: it holds the same
    assert _wallet(funded) == 10000
    ledger_ok()


def test_same_key_buys_once(funded: Any, days_plan: Any, now: Any, ledger_ok: Any) -> None:
    first = do_buy_plan_from_balance(
        line=funded, plan=days_plan, channel="ussd", idempotency_key="same", now=now
    )
    second = do_buy_plan_from_balance(
        line=funded, plan=days_plan, channel="ussd", idempotency_key="same", now=now
    )
    assert first.pk == second.pk
    assert TopUpOrder.objects.filter(payment_provider="balance").count() == 1
    assert _wallet(funded) == 5000
    ledger_ok()


def test_replay_after_the_balance_was_spent_returns_the_first_order(
    funded: Any, days_plan: Any, now: Any
) -> None:
    first = do_buy_plan_from_balance(
        line=funded, plan=days_plan, channel="ussd", idempotency_key="a", now=now
    )
    do_buy_plan_from_balance(
        line=funded, plan=days_plan, channel="ussd", idempotency_key="b", now=now
    )
    assert _wallet(funded) == 0
    again = do_buy_plan_from_balance(
        line=funded, plan=days_plan, channel="ussd", idempotency_key="a", now=now
    )
    assert again.pk == first.pk


def _assert_nothing_written(line: Any, wallet: int, valid_until: Any) -> None:
    assert not TopUpOrder.objects.filter(payment_provider="balance").exists()
    assert not TopUpOrder.objects.filter(channel__in=["ussd", "ivr"]).exists()
    assert _wallet(line) == wallet
    line.refresh_from_db()
    assert line.valid_until == valid_until


def test_refused_when_balance_is_short(funded: Any, now: Any, ledger_ok: Any) -> None:
    from leb.catalog.models import Plan

    dear = Plan.objects.create(
        code="hk-200",
        name_en="HK$200",
        name_zh_hans="200港元",
        name_zh_hant="200港元",
        currency="HKD",
        price=20000,
        credit=0,
        validity_days=365,
    )
    before = funded.valid_until
    with pytest.raises(BalanceRefused) as refused:
        do_buy_plan_from_balance(
            line=funded, plan=dear, channel="ussd", idempotency_key="k", now=now
        )
    assert refused.value.code == "balance_short"
    assert refused.value.messages == ["The balance is too low for this plan."]
    _assert_nothing_written(funded, 10000, before)
    ledger_ok()


def test_refused_when_currency_differs(funded: Any, gbp_plan: Any, now: Any) -> None:
    before = funded.valid_until
    with pytest.raises(BalanceRefused) as refused:
        do_buy_plan_from_balance(
            line=funded, plan=gbp_plan, channel="ussd", idempotency_key="k", now=now
        )
    assert refused.value.code == "currency_mismatch"
    _assert_nothing_written(funded, 10000, before)


def test_refused_when_line_is_terminated(funded: Any, days_plan: Any, now: Any) -> None:
    # given a line whose number is gone by the dates (sweep not run yet)
    later = funded.valid_until + timedelta(days=200)
    before = funded.valid_until
    with pytest.raises(BalanceRefused) as refused:
        do_buy_plan_from_balance(
            line=funded, plan=days_plan, channel="ussd", idempotency_key="k", now=later
        )
    assert refused.value.code == "line_terminated"
    _assert_nothing_written(funded, 10000, before)


def test_refused_when_line_is_stored_terminated(funded: Any, days_plan: Any, now: Any) -> None:
    type(funded).objects.filter(pk=funded.pk).update(status=LineStatus.TERMINATED)
    funded.refresh_from_db()
    with pytest.raises(BalanceRefused) as refused:
        do_buy_plan_from_balance(
            line=funded, plan=days_plan, channel="ussd", idempotency_key="k", now=now
        )
    assert refused.value.code == "line_terminated"


def test_refused_when_policy_forbids(funded: Any, days_plan: Any, now: Any) -> None:
    funded.policy.plans_from_balance = False
    funded.policy.save()
    before = funded.valid_until
    with pytest.raises(BalanceRefused) as refused:
        do_buy_plan_from_balance(
            line=funded, plan=days_plan, channel="ussd", idempotency_key="k", now=now
        )
    assert refused.value.code == "policy_forbids"
    _assert_nothing_written(funded, 10000, before)


def test_refused_when_plan_not_sold_on_the_channel(funded: Any, days_plan: Any, now: Any) -> None:
    days_plan.channels = ["web"]
    days_plan.save()
    with pytest.raises(BalanceRefused) as refused:
        do_buy_plan_from_balance(
            line=funded, plan=days_plan, channel="ussd", idempotency_key="k", now=now
        )
    assert refused.value.code == "plan_channel"
    _assert_nothing_written(funded, 10000, funded.valid_until)


def test_suspended_line_is_restored(funded: Any, days_plan: Any, now: Any, ledger_ok: Any) -> None:
    # given a line suspended by its dates (30 grace days after 2026-07-31)
    later = funded.valid_until + timedelta(days=40)
    # when the plan is bought: the restore fee (HK$10) comes from the credit, here none
    order = do_buy_plan_from_balance(
        line=funded, plan=days_plan, channel="ussd", idempotency_key="k", now=later
    )
    funded.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert funded.status == LineStatus.ACTIVE
    assert funded.valid_until == later + timedelta(days=180)
    ledger_ok()


def test_refund_returns_the_price_to_the_wallet(
    funded: Any, days_plan: Any, now: Any, ledger_ok: Any
) -> None:
    from leb.topups.actions import do_refund_order

    # given a plan bought from the balance
    order = do_buy_plan_from_balance(
        line=funded, plan=days_plan, channel="ivr", idempotency_key="k", now=now
    )
    before = funded.valid_until
    # when staff refund it
    do_refund_order(order, reason="bought by mistake", actor="staff:test", now=now)
    # then the price is back on the wallet and the days are taken back
    assert _wallet(funded) == 10000
    funded.refresh_from_db()
    assert funded.valid_until == before
    # and no provider refund is left to do: the money never left leb
    order.refresh_from_db()
    assert order.refund_due is False
    ledger_ok()


def test_refused_when_the_plan_would_add_nothing(funded: Any, days_plan: Any, now: Any) -> None:
    # given a days-only plan and the line already valid until its 365-day cap
    funded.valid_until = now + timedelta(days=365)
    funded.save(update_fields=["valid_until"])
    wallet = _wallet(funded)
    # when it is bought from the balance
    with pytest.raises(BalanceRefused) as caught:
        do_buy_plan_from_balance(
            line=funded, plan=days_plan, channel="ussd", idempotency_key="b:cap", now=now
        )
    # then it is refused with the reason and nothing is written
    assert caught.value.code == "adds_nothing"
    assert "would add no days" in caught.value.messages[0]
    _assert_nothing_written(funded, wallet, now + timedelta(days=365))
