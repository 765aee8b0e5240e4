"""do_pay_and_fulfil: the payment and the fulfilment in one transaction, with
the same rules and the same books as do_mark_paid followed by do_fulfil_order."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction

from leb.catalog.models import Plan
from leb.ledger.actions import InsufficientFunds
from leb.ledger.models import Transfer, TransferGroup
from leb.ledger.queries import balance_by_code
from leb.lines.actions import sweep_lines, wallet_for
from leb.lines.models import LineEvent
from leb.notifications.models import Notification
from leb.topups.actions import (
    OrderError,
    do_create_order,
    do_pay_and_fulfil,
    expire_unpaid_orders,
)
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = pytest.mark.django_db


def _order(line: Any, plan: Plan, now: datetime, key: str = "k") -> TopUpOrder:
    return do_create_order(line=line, channel="web", plan=plan, idempotency_key=key, now=now)


def _pay(order: TopUpOrder, now: datetime, **changes: Any) -> TopUpOrder:
    payment = {
        "amount": order.price,
        "currency": order.currency,
        "provider": "sandbox",
        "reference": "ref-1",
        **changes,
    }
    return do_pay_and_fulfil(order, now=now, **payment)


def test_a_paid_order_is_fulfilled_and_stored_once_with_its_payment(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given an order awaiting payment
    line = make_line()
    order = _order(line, hkd_plan, now)

    # when its payment is confirmed
    done = _pay(order, now)

    # then the stored order carries both the payment and the fulfilment
    stored = TopUpOrder.objects.get(pk=order.pk)
    assert done.status == stored.status == OrderStatus.FULFILLED
    assert (stored.paid_amount, stored.payment_provider, stored.payment_reference) == (
        5000,
        "sandbox",
        "ref-1",
    )
    assert stored.paid_at == stored.fulfilled_at == now
    assert stored.receipt_number == "2026-0000001"
    line.refresh_from_db()
    assert line.valid_until == stored.valid_until_after == now + timedelta(days=210)
    assert balance_by_code(f"wallet:line:{line.pk}") == 5000
    assert balance_by_code("suspense:HKD") == 0
    assert set(TransferGroup.objects.values_list("idempotency_key", flat=True)) == {
        f"{order.order_ref}:payment",
        f"{order.order_ref}:fulfil",
    }
    assert Notification.objects.filter(kind="topup_succeeded", line=line).count() == 1
    ledger_ok()


def test_the_same_payment_again_changes_nothing(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given a fulfilled order
    line = make_line()
    first = _pay(_order(line, hkd_plan, now), now)

    # when the same confirmation arrives again later
    again = _pay(first, now + timedelta(minutes=3))

    # then it is the first result, and nothing more was written
    assert (again.status, again.receipt_number, again.fulfilled_at) == (
        OrderStatus.FULFILLED,
        first.receipt_number,
        first.fulfilled_at,
    )
    assert Transfer.objects.count() == 2
    assert LineEvent.objects.filter(line=line, kind="topped_up").count() == 1
    assert balance_by_code(f"wallet:line:{line.pk}") == 5000
    ledger_ok()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount": 4999}, "amount_mismatch"),
        ({"currency": "GBP"}, "amount_mismatch"),
    ],
)
def test_a_payment_that_does_not_match_writes_nothing(
    make_line: Any, hkd_plan: Plan, now: datetime, changes: dict[str, Any], code: str
) -> None:
    # given an order awaiting payment
    order = _order(make_line(), hkd_plan, now)

    # when a payment for another amount or currency arrives
    with pytest.raises(OrderError) as exc:
        _pay(order, now, **changes)

    # then it is refused and neither posted nor stored
    assert exc.value.code == code
    assert TopUpOrder.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert not TransferGroup.objects.exists()


def test_a_second_different_payment_is_refused(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given a fulfilled order
    order = _pay(_order(make_line(), hkd_plan, now), now)

    # when another payment for it arrives
    with pytest.raises(OrderError) as exc:
        _pay(order, now, reference="ref-2")

    # then it is refused and the books hold the first only
    assert exc.value.code == "paid_twice"
    assert TopUpOrder.objects.get(pk=order.pk).payment_reference == "ref-1"
    assert Transfer.objects.count() == 2
    ledger_ok()


def test_a_line_terminated_before_the_payment_fails_the_order_with_its_payment_kept(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given an order whose line terminates before the money is confirmed
    line = make_line()
    order = _order(line, hkd_plan, now)
    later = now + timedelta(days=150)
    sweep_lines(later)

    # when the payment is confirmed
    failed = _pay(order, later)

    # then the order fails, owing the payer a refund, with the payment stored
    stored = TopUpOrder.objects.get(pk=order.pk)
    assert failed.status == stored.status == OrderStatus.FAILED
    assert stored.refund_due
    assert (stored.paid_amount, stored.payment_reference, stored.paid_at) == (5000, "ref-1", later)
    assert stored.receipt_number is None
    # the payment went back out of suspense towards the payer
    assert balance_by_code("suspense:HKD") == 0
    assert balance_by_code("clearing:sandbox:HKD") == 0
    ledger_ok()


def test_a_late_payment_for_an_expired_order_is_honoured(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given an order that expired unpaid
    order = _order(make_line(), hkd_plan, now)
    expire_unpaid_orders(now + timedelta(hours=1))

    # when its payment arrives anyway
    done = _pay(order, now + timedelta(hours=2))

    # then the subscriber gets what they paid for
    assert done.status == OrderStatus.FULFILLED
    assert TopUpOrder.objects.get(pk=order.pk).failure_reason == ""
    ledger_ok()


def test_a_wallet_too_low_to_pay_writes_nothing(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given an order to be paid from a wallet that holds less than its price
    line = make_line()
    order = _order(line, hkd_plan, now)
    wallet = wallet_for(line)

    # when the wallet pays
    with pytest.raises(InsufficientFunds), transaction.atomic():
        _pay(order, now, provider="balance", paid_from=wallet)

    # then nothing was posted or changed
    assert TopUpOrder.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert not TransferGroup.objects.exists()
    assert balance_by_code(f"wallet:line:{line.pk}") == 0
    ledger_ok()
