from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from leb.catalog.models import Plan, Promotion
from leb.catalog.quotes import QuoteError
from leb.ledger.queries import balance_by_code
from leb.lines.actions import sweep_lines
from leb.lines.models import LineEvent
from leb.notifications.models import Notification
from leb.testing import topup
from leb.topups.actions import (
    OrderError,
    do_cancel_order,
    do_create_order,
    do_fail_order,
    do_fulfil_order,
    do_mark_paid,
    do_refund_order,
    expire_unpaid_orders,
    recover_paid_orders,
)
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = pytest.mark.django_db


def wallet_balance(line: Any) -> int:
    return balance_by_code(f"wallet:line:{line.pk}")


def test_full_flow_credits_wallet_extends_validity_and_numbers_receipt(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given an active line
    line = make_line()
    # when it is topped up with a plan
    order = topup(line, hkd_plan, now=now)
    # then
    line.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert order.receipt_number == "2026-0000001"
    assert line.valid_until == now + timedelta(days=210) == order.valid_until_after
    assert wallet_balance(line) == 5000
    assert LineEvent.objects.filter(line=line, kind="topped_up").count() == 1
    assert Notification.objects.filter(kind="topup_succeeded", line=line).count() == 1
    ledger_ok()


def test_fulfilling_twice_changes_nothing(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    order = topup(make_line(), hkd_plan, now=now)
    again = do_fulfil_order(order, now=now + timedelta(minutes=5))
    assert again.receipt_number == order.receipt_number
    assert again.fulfilled_at == order.fulfilled_at
    assert wallet_balance(order.line) == 5000
    assert LineEvent.objects.filter(line=order.line, kind="topped_up").count() == 1
    ledger_ok()


def test_receipt_numbers_are_gap_free_per_year(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    numbers = [topup(make_line(), hkd_plan, now=now).receipt_number for _ in range(3)]
    new_year = datetime(2027, 1, 1, 12, tzinfo=UTC)
    numbers.append(topup(make_line(at=new_year), hkd_plan, now=new_year).receipt_number)
    assert numbers == ["2026-0000001", "2026-0000002", "2026-0000003", "2027-0000001"]


def test_failed_fulfilment_gives_its_receipt_number_back(
    make_line: Any, hkd_plan: Plan, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a paid order whose fulfilment crashes after numbering
    line = make_line()
    order = do_create_order(
        line=line, channel="web", plan=hkd_plan, idempotency_key="crash", now=now
    )
    order = do_mark_paid(
        order, amount=5000, currency="HKD", provider="sandbox", reference="r", now=now
    )
    from leb.topups import actions

    real = actions.next_receipt_number

    def crash(at: datetime) -> str:
        real(at)
        raise RuntimeError("power cut")

    monkeypatch.setattr(actions, "next_receipt_number", crash)
    with pytest.raises(RuntimeError):
        do_fulfil_order(order, now=now)
    monkeypatch.undo()
    # when recovery runs
    result = recover_paid_orders(now + timedelta(minutes=5))
    # then the order is fulfilled with the first number: no gap
    order.refresh_from_db()
    assert (
        result.done == 1 and order.status == "fulfilled" and order.receipt_number == "2026-0000001"
    )
    assert wallet_balance(line) == 5000


def test_same_idempotency_key_returns_same_order(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    line = make_line()
    a = do_create_order(line=line, channel="web", plan=hkd_plan, idempotency_key="k", now=now)
    b = do_create_order(line=line, channel="web", plan=hkd_plan, idempotency_key="k", now=now)
    assert a.pk == b.pk
    with pytest.raises(OrderError) as exc:
        do_create_order(line=line, channel="web", amount=100, idempotency_key="k", now=now)
    assert exc.value.code == "key_conflict"
    assert TopUpOrder.objects.count() == 1


def test_paid_twice_with_different_amounts_is_refused(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    order = do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="p2", now=now
    )
    do_mark_paid(order, amount=5000, currency="HKD", provider="sandbox", reference="r1", now=now)
    # the same notification again is fine
    do_mark_paid(order, amount=5000, currency="HKD", provider="sandbox", reference="r1", now=now)
    with pytest.raises(OrderError) as exc:
        do_mark_paid(
            order, amount=4000, currency="HKD", provider="sandbox", reference="r2", now=now
        )
    assert exc.value.code == "paid_twice"
    assert balance_by_code("suspense:HKD") == 5000
    ledger_ok()


@pytest.mark.parametrize(("amount", "currency"), [(4999, "HKD"), (5000, "GBP"), (0, "HKD")])
def test_payment_must_match_order(
    make_line: Any, hkd_plan: Plan, now: datetime, amount: int, currency: str
) -> None:
    order = do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="pm", now=now
    )
    with pytest.raises(OrderError) as exc:
        do_mark_paid(
            order, amount=amount, currency=currency, provider="sandbox", reference="r", now=now
        )
    assert exc.value.code == "amount_mismatch"
    order.refresh_from_db()
    assert order.status == "pending_payment" and order.paid_at is None


def test_unpaid_order_cannot_be_fulfilled(make_line: Any, hkd_plan: Plan, now: datetime) -> None:
    order = do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="u", now=now
    )
    with pytest.raises(OrderError):
        do_fulfil_order(order, now=now)


def test_bad_requests_write_nothing(
    make_line: Any, hkd_plan: Plan, gbp_plan: Plan, now: datetime
) -> None:
    line = make_line()
    cases: list[dict[str, Any]] = [
        {"plan": gbp_plan},
        {"amount": 0},
        {"amount": -5},
        {"plan": hkd_plan, "amount": 5},
        {},
        {"plan": hkd_plan, "promo_code": "NOPE"},
    ]
    for i, case in enumerate(cases):
        with pytest.raises(ValidationError):
            do_create_order(line=line, channel="web", idempotency_key=f"bad{i}", now=now, **case)
    with pytest.raises(OrderError):
        do_create_order(line=line, channel="web", plan=hkd_plan, idempotency_key="", now=now)
    assert TopUpOrder.objects.count() == 0


def test_topup_on_terminated_line_is_refused(make_line: Any, hkd_plan: Plan, now: datetime) -> None:
    line = make_line()
    later = now + timedelta(days=150)
    sweep_lines(later)
    line.refresh_from_db()
    with pytest.raises(QuoteError) as exc:
        do_create_order(line=line, channel="web", plan=hkd_plan, idempotency_key="t", now=later)
    assert exc.value.code == "line_terminated"
    assert TopUpOrder.objects.count() == 0


def test_paid_order_for_a_line_terminated_meanwhile_fails_with_refund_due(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    line = make_line()
    order = do_create_order(
        line=line, channel="web", plan=hkd_plan, idempotency_key="late", now=now
    )
    later = now + timedelta(days=150)
    order = do_mark_paid(
        order, amount=5000, currency="HKD", provider="sandbox", reference="r", now=later
    )
    sweep_lines(later)
    order = do_fulfil_order(order, now=later)
    assert order.status == "failed" and order.refund_due
    assert balance_by_code("suspense:HKD") == 0
    ledger_ok()


def test_topup_in_grace_and_suspension_restores_active(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    grace_line, suspended_line = make_line(), make_line()
    at = now + timedelta(days=40)
    sweep_lines(at)
    topup(grace_line, hkd_plan, now=at)
    grace_line.refresh_from_db()
    assert grace_line.status == "active" and grace_line.valid_until == at + timedelta(days=180)
    at2 = now + timedelta(days=70)
    sweep_lines(at2)
    topup(suspended_line, hkd_plan, now=at2)
    suspended_line.refresh_from_db()
    assert suspended_line.status == "active"
    # restore fee of 1000 taken from the 5000 credit
    assert wallet_balance(suspended_line) == 4000
    assert balance_by_code("revenue:restore:HKD") == 1000
    ledger_ok()


def test_discount_and_bonus_funded_by_promotion_expense(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    Promotion.objects.create(
        code="d",
        name_en="d",
        name_zh_hans="d",
        name_zh_hant="d",
        currency="HKD",
        promo_code="HALF",
        discount_percent=50,
        bonus_credit_fixed=100,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
    )
    order = topup(make_line(), hkd_plan, now=now, promo_code="HALF")
    assert order.price == 2500
    assert wallet_balance(order.line) == 5100
    assert balance_by_code("promotion_expense:HKD") == -2600
    ledger_ok()


def test_plan_with_credit_below_price_books_revenue(
    make_line: Any, now: datetime, ledger_ok: Any
) -> None:
    plan = Plan.objects.create(
        code="keep",
        name_en="k",
        name_zh_hans="k",
        name_zh_hant="k",
        currency="HKD",
        price=3000,
        credit=1000,
        validity_days=90,
    )
    topup(make_line(), plan, now=now)
    assert balance_by_code("revenue:topup:HKD") == 2000
    ledger_ok()


def test_refund_reverses_money_and_validity(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    line = make_line()
    before = line.valid_until
    order = topup(line, hkd_plan, now=now)
    order = do_refund_order(
        order, reason="customer request", actor="staff:test", now=now + timedelta(hours=1)
    )
    line.refresh_from_db()
    assert order.status == "refunded" and order.refund_due
    assert wallet_balance(line) == 0
    assert line.valid_until == before
    assert balance_by_code("clearing:sandbox:HKD") == 0
    from leb.audit.models import AuditEntry

    assert AuditEntry.objects.filter(action="topup.refund", actor="staff:test").count() == 1
    # refunding again changes nothing
    assert do_refund_order(order, reason="again", actor="staff:test", now=now).status == "refunded"
    ledger_ok()


def test_refund_keep_rule_keeps_validity(
    make_line: Any, uk_policy: Any, gbp_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    line = make_line(policy=uk_policy, currency="GBP")
    order = topup(line, gbp_plan, now=now)
    line.refresh_from_db()
    kept = line.valid_until
    do_refund_order(order, reason="r", actor="staff:test", now=now)
    line.refresh_from_db()
    assert line.valid_until == kept
    ledger_ok()


def test_refund_refused_once_balance_is_forfeited(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    line = make_line()
    order = topup(line, hkd_plan, now=now)
    sweep_lines(now + timedelta(days=400))
    with pytest.raises(OrderError):
        do_refund_order(order, reason="r", actor="staff:test", now=now + timedelta(days=400))
    order.refresh_from_db()
    assert order.status == "fulfilled"
    ledger_ok()


def test_unpaid_orders_expire_and_release_promotion_budget(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    promo = Promotion.objects.create(
        code="b",
        name_en="b",
        name_zh_hans="b",
        name_zh_hant="b",
        currency="HKD",
        bonus_credit_fixed=500,
        budget=500,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=9),
    )
    order = do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="e", now=now
    )
    promo.refresh_from_db()
    assert promo.budget_used == 500
    assert expire_unpaid_orders(now + timedelta(minutes=10)).done == 0
    assert expire_unpaid_orders(now + timedelta(minutes=31)).done == 1
    order.refresh_from_db()
    promo.refresh_from_db()
    assert order.status == "expired" and promo.budget_used == 0


def test_late_payment_on_expired_order_is_honoured(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    order = do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="lp", now=now
    )
    expire_unpaid_orders(now + timedelta(hours=1))
    order = do_mark_paid(
        order,
        amount=5000,
        currency="HKD",
        provider="sandbox",
        reference="r",
        now=now + timedelta(hours=2),
    )
    order = do_fulfil_order(order, now=now + timedelta(hours=2))
    assert order.status == "fulfilled"
    ledger_ok()


def test_cancel_and_fail(make_line: Any, hkd_plan: Plan, now: datetime) -> None:
    line = make_line()
    a = do_create_order(line=line, channel="web", plan=hkd_plan, idempotency_key="c1", now=now)
    b = do_create_order(line=line, channel="web", plan=hkd_plan, idempotency_key="c2", now=now)
    assert do_cancel_order(a, now=now).status == "cancelled"
    assert do_fail_order(b, reason="card declined", now=now).failure_reason == "card declined"
    paid = topup(line, hkd_plan, now=now)
    with pytest.raises(OrderError):
        do_cancel_order(paid, now=now)


def test_recovery_finishes_paid_orders_only_after_grace(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    order = do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="r", now=now
    )
    do_mark_paid(order, amount=5000, currency="HKD", provider="sandbox", reference="r", now=now)
    assert recover_paid_orders(now + timedelta(seconds=5)).done == 0
    assert recover_paid_orders(now + timedelta(minutes=2)).done == 1
    order.refresh_from_db()
    assert order.status == "fulfilled"
    ledger_ok()
