"""Real concurrency on PostgreSQL: several connections racing on the same rows.
(SQLite serialises every writer with IMMEDIATE transactions, so there is no race
to test there.)"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from leb.catalog.models import Plan, Promotion, PromotionRedemption
from leb.catalog.quotes import QuoteError
from leb.ledger.actions import Leg, get_account, post_transfers, system_account
from leb.ledger.models import AccountKind, TransferGroup
from leb.ledger.queries import balance_by_code
from leb.lines.actions import sweep_lines
from leb.lines.models import Line, LineEvent
from leb.testing import race
from leb.topups.actions import do_create_order, do_fulfil_order, do_mark_paid
from leb.topups.models import TopUpOrder

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


def test_two_sweeps_at_once_process_each_line_once(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given 60 lines, each with a balance, all past their whole lifecycle
    lines = [make_line() for _ in range(60)]
    from leb.testing import topup

    for line in lines[:20]:
        topup(line, hkd_plan, now=now)
    later = now + timedelta(days=400)
    # when two sweeps run at the same time
    results = race(2, lambda i: sweep_lines(later, batch_size=7))
    # then every line went through each transition exactly once
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r.lines for r in results) == 60
    assert set(Line.objects.values_list("status", flat=True)) == {"terminated"}
    per_line = LineEvent.objects.filter(kind="status_changed").values_list("line_id", "to_status")
    assert len(per_line) == len(set(per_line)) == 180
    assert sum(r.forfeited_minor.get("HKD", 0) for r in results) == 20 * 5000
    ledger_ok()


def test_concurrent_fulfilment_of_one_order_credits_once(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    line = make_line()
    order = do_create_order(
        line=line, channel="web", plan=hkd_plan, idempotency_key="race", now=now
    )
    do_mark_paid(order, amount=5000, currency="HKD", provider="sandbox", reference="r", now=now)
    results = race(4, lambda i: do_fulfil_order(TopUpOrder(pk=order.pk), now=now))
    assert all(isinstance(r, TopUpOrder) for r in results), results
    assert {r.receipt_number for r in results} == {"2026-0000001"}
    assert balance_by_code(f"wallet:line:{line.pk}") == 5000
    ledger_ok()


def test_concurrent_payment_notifications_pay_once(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    order = do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="pay", now=now
    )
    race(
        4,
        lambda i: do_mark_paid(
            TopUpOrder.objects.get(pk=order.pk),
            amount=5000,
            currency="HKD",
            provider="sandbox",
            reference="r",
            now=now,
        ),
    )
    assert balance_by_code("suspense:HKD") == 5000
    ledger_ok()


def test_promotion_budget_holds_under_concurrency(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    # given a promotion whose budget covers exactly 3 bonuses of 500
    promo = Promotion.objects.create(
        code="hot",
        name_en="h",
        name_zh_hans="h",
        name_zh_hant="h",
        currency="HKD",
        promo_code="HOT",
        bonus_credit_fixed=500,
        budget=1500,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
    )
    lines = [make_line() for _ in range(8)]
    # when 8 lines order with it at once
    results = race(
        8,
        lambda i: do_create_order(
            line=lines[i],
            channel="web",
            plan=hkd_plan,
            promo_code="HOT",
            idempotency_key=f"hot{i}",
            now=now,
        ),
    )
    # then exactly 3 succeed, the rest are told the budget is used up
    won = [r for r in results if isinstance(r, TopUpOrder)]
    lost = [r for r in results if isinstance(r, QuoteError)]
    assert len(won) == 3 and len(lost) == 5, results
    promo.refresh_from_db()
    assert promo.budget_used == 1500
    assert PromotionRedemption.objects.filter(promotion=promo).count() == 3


def test_same_idempotency_key_posted_concurrently_posts_once(db: Any, ledger_ok: Any) -> None:
    clearing = system_account(AccountKind.CLEARING, "HKD", "race")
    wallet = get_account(
        "wallet:race", AccountKind.WALLET, "HKD", no_negative=True, tracks_balance=True
    )
    legs = [Leg(clearing, wallet, 700, "x")]
    results = race(6, lambda i: post_transfers("race:key", legs))
    assert len({r.pk for r in results}) == 1, results
    assert TransferGroup.objects.filter(idempotency_key="race:key").count() == 1
    assert balance_by_code("wallet:race") == 700
    ledger_ok()


def test_concurrent_orders_with_one_key_create_one_order(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    line = make_line()
    results = race(
        4,
        lambda i: do_create_order(
            line=line, channel="web", plan=hkd_plan, idempotency_key="same", now=now
        ),
    )
    assert len({r.pk for r in results}) == 1, results
    assert TopUpOrder.objects.count() == 1
