"""settle(): the one idempotent path from a provider's word to an order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from leb.ledger.queries import balance_by_code
from leb.payments import actions
from leb.payments.actions import PaymentError, do_refund_attempt, do_start_attempt, settle
from leb.payments.models import AttemptStatus
from leb.payments.providers.base import CANCELLED, FAILED, PENDING, SUCCEEDED, Outcome
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = pytest.mark.django_db


def paid(attempt: Any) -> Outcome:
    return Outcome(SUCCEEDED, amount=attempt.amount, currency=attempt.currency)


def test_success_fulfils_once_and_replays_are_no_ops(
    make_order: Any, now: datetime, ledger_ok: Any
) -> None:
    # given an attempt
    attempt = do_start_attempt(make_order(), "sandbox", now=now)
    # when the success is settled three times
    results = [settle(attempt, paid(attempt), now=now) for _ in range(3)]
    # then only the first did anything
    assert results == ["fulfilled", "duplicate", "duplicate"]
    order = TopUpOrder.objects.get(pk=attempt.order_id)
    assert order.status == OrderStatus.FULFILLED
    assert order.payment_reference == attempt.provider_reference
    assert balance_by_code(f"wallet:line:{order.line_id}") == 5000
    ledger_ok()


def test_pending_outcome_changes_nothing(make_order: Any, now: datetime) -> None:
    attempt = do_start_attempt(make_order(), "sandbox", now=now)
    assert settle(attempt, Outcome(PENDING), now=now) == "pending"
    assert TopUpOrder.objects.get(pk=attempt.order_id).status == OrderStatus.PENDING_PAYMENT


def test_second_successful_attempt_on_a_paid_order_is_refused(
    make_order: Any, now: datetime, ledger_ok: Any
) -> None:
    # given two attempts on one order (two tabs)
    order = make_order()
    first = do_start_attempt(order, "sandbox", now=now)
    second = do_start_attempt(order, "sandbox", now=now)
    # when both succeed at the provider
    assert settle(first, paid(first), now=now) == "fulfilled"
    assert settle(second, paid(second), now=now) == "paid_twice"
    # then the line is credited once and the second payment is flagged for refund
    second.refresh_from_db()
    assert (second.status, second.failure_code) == (AttemptStatus.SUCCEEDED, "paid_twice")
    assert balance_by_code(f"wallet:line:{order.line_id}") == 5000
    ledger_ok()


def test_a_failure_does_not_fail_the_order_while_another_attempt_is_open(
    make_order: Any, now: datetime
) -> None:
    # given two open attempts
    order = make_order()
    first = do_start_attempt(order, "sandbox", now=now)
    second = do_start_attempt(order, "sandbox", now=now)
    # when one fails
    settle(first, Outcome(FAILED, failure_code="card_declined"), now=now)
    # then the order waits for the other
    assert TopUpOrder.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    # and fails when the other is cancelled too
    settle(second, Outcome(CANCELLED), now=now)
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert order.failure_reason == "The payment was cancelled."


def test_success_after_cancel_is_honoured(make_order: Any, now: datetime, ledger_ok: Any) -> None:
    # given an attempt cancelled on the return page (its order failed)
    attempt = do_start_attempt(make_order(), "sandbox", now=now)
    settle(attempt, Outcome(CANCELLED, failure_code="cancelled"), now=now)
    # when the payer completes the payment anyway
    result = settle(attempt, paid(attempt), now=now)
    # then the money is honoured: the top-up happens
    assert result == "fulfilled"
    assert TopUpOrder.objects.get(pk=attempt.order_id).status == OrderStatus.FULFILLED
    ledger_ok()


def test_replay_finishes_a_paid_but_unfulfilled_order(
    make_order: Any, now: datetime, ledger_ok: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a success whose fulfilment was lost (marked paid, then a crash)
    from leb.topups.actions import do_mark_paid

    attempt = do_start_attempt(make_order(), "sandbox", now=now)
    do_mark_paid(
        attempt.order,
        amount=5000,
        currency="HKD",
        provider="sandbox",
        reference=attempt.provider_reference,
        now=now,
    )
    type(attempt).objects.filter(pk=attempt.pk).update(status=AttemptStatus.SUCCEEDED)
    # when the event is replayed
    settle(attempt, paid(attempt), now=now)
    # then the order is completed
    assert TopUpOrder.objects.get(pk=attempt.order_id).status == OrderStatus.FULFILLED
    ledger_ok()


def test_refund_reverses_the_top_up_and_the_payment(
    make_order: Any, now: datetime, ledger_ok: Any
) -> None:
    # given a fulfilled payment
    attempt = do_start_attempt(make_order(), "sandbox", now=now)
    settle(attempt, paid(attempt), now=now)
    attempt.refresh_from_db()
    # when it is refunded
    refunded = do_refund_attempt(attempt, reason="customer asked", actor="staff:finance", now=now)
    # then books and provider agree
    assert refunded.status == AttemptStatus.REFUNDED
    assert refunded.provider_data["refund"].startswith("sbx_refund_")
    order = TopUpOrder.objects.get(pk=attempt.order_id)
    assert order.status == OrderStatus.REFUNDED
    assert balance_by_code(f"wallet:line:{order.line_id}") == 0
    # and a late success replay or failure changes nothing
    assert settle(refunded, paid(refunded), now=now) == "duplicate"
    assert settle(refunded, Outcome(FAILED), now=now) == "late_failure_ignored"
    ledger_ok()


def test_refund_of_an_unpaid_attempt_is_refused(make_order: Any, now: datetime) -> None:
    attempt = do_start_attempt(make_order(), "sandbox", now=now)
    with pytest.raises(PaymentError) as exc:
        do_refund_attempt(attempt, reason="x", actor="staff:x", now=now)
    assert exc.value.code == "not_succeeded"


def test_every_failure_code_has_a_message() -> None:
    for code in actions.FAILURE_MESSAGES:
        assert actions.failure_message(code)
    assert actions.failure_message("something_new") == "The payment did not go through."
