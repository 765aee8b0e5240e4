"""Concurrent reservations against one budgeted promotion on PostgreSQL: its
slices let them proceed side by side, and the cap is still exact: the use
is the sum of what was granted, never above the budget, and a reservation
is refused only once the room left is less than its cost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from leb.catalog.actions import do_create_promotion, release_promotion, reserve_promotion
from leb.catalog.models import Plan, Promotion, PromotionBudgetSlice, PromotionRedemption
from leb.catalog.quotes import QuoteError
from leb.testing import race, topup
from leb.topups.models import TopUpOrder

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: concurrent connections with row locks",
    ),
    pytest.mark.django_db(transaction=True),
]

CLIENTS = 16


def _promotion(now: datetime, budget: int, bonus: int = 500) -> Promotion:
    return do_create_promotion(
        {
            "code": "race",
            "name_en": "Race",
            "name_zh_hans": "竞",
            "name_zh_hant": "競",
            "currency": "HKD",
            "bonus_credit_fixed": bonus,
            "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=30),
            "budget": budget,
        },
        actor="staff:race",
        now=now,
    )


def _per_slice_exact(promo: Promotion) -> None:
    rows = list(PromotionBudgetSlice.objects.filter(promotion=promo))
    assert sum(piece.allotment for piece in rows) == promo.budget
    for piece in rows:
        held = sum(
            PromotionRedemption.objects.filter(
                promotion=promo, slot=piece.slot, state__in=["reserved", "used"]
            ).values_list("cost", flat=True)
        )
        assert piece.used == held <= piece.allotment


def test_sixteen_clients_reserve_exactly_up_to_the_cap(
    make_line: Callable[..., Any], now: datetime
) -> None:
    # given a budget for about 60% of what 16 clients will ask, in costs
    # that do not divide the slices evenly
    rounds = 12
    costs = [100 + 37 * (i % 5) for i in range(CLIENTS)]
    budget = sum(costs) * rounds * 6 // 10
    promo = _promotion(now, budget)
    lines = [make_line() for _ in range(CLIENTS)]

    # when each client reserves again and again, one transaction each
    def client(i: int) -> list[tuple[int, bool]]:
        outcomes = []
        for n in range(rounds):
            try:
                with transaction.atomic():
                    reserve_promotion(promo.pk, lines[i], f"r{i}-{n}", costs[i], now)
            except QuoteError as exc:
                assert exc.code == "promo_budget"
                outcomes.append((costs[i], False))
            else:
                outcomes.append((costs[i], True))
        return outcomes

    results = race(CLIENTS, client)

    # then nothing failed, the use is exactly the granted costs, within the budget
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    outcomes = [o for r in results for o in r]
    granted = sum(cost for cost, won in outcomes if won)
    promo.refresh_from_db()
    assert promo.budget_used == granted <= budget
    assert PromotionRedemption.objects.filter(promotion=promo).count() == sum(
        1 for _cost, won in outcomes if won
    )
    # and every refusal came only once less than its cost was left
    refused = [cost for cost, won in outcomes if not won]
    assert refused
    assert budget - granted < min(refused)
    _per_slice_exact(promo)


def test_sixteen_clients_reserving_and_releasing_keep_every_slice_exact(
    make_line: Callable[..., Any], now: datetime
) -> None:
    # given a tight budget: room for 20 reservations of 300
    promo = _promotion(now, budget=6000)
    lines = [make_line() for _ in range(CLIENTS)]

    # when clients reserve and give back (an order expiring) at once
    def client(i: int) -> int:
        kept = 0
        for n in range(10):
            ref = f"r{i}-{n}"
            try:
                with transaction.atomic():
                    reserve_promotion(promo.pk, lines[i], ref, 300, now)
            except QuoteError:
                continue
            if n % 2:
                with transaction.atomic():
                    release_promotion(ref)
            else:
                kept += 1
        return kept

    results = race(CLIENTS, client)

    # then the use is what the kept reservations hold, never above the budget
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    promo.refresh_from_db()
    assert promo.budget_used == 300 * sum(results) <= 6000
    assert PromotionRedemption.objects.filter(promotion=promo, state="reserved").count() == sum(
        results
    )
    _per_slice_exact(promo)


def test_sixteen_top_ups_at_once_share_a_budget_for_ten(
    make_line: Callable[..., Any], hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given an automatic bonus of 500 with a budget for ten
    promo = _promotion(now, budget=5000)
    lines = [make_line() for _ in range(CLIENTS)]

    # when sixteen lines top up at once (create, pay, fulfil)
    results = race(CLIENTS, lambda i: topup(lines[i], hkd_plan, now=now, key=f"race{i}"))

    # then each top-up either got the bonus or was told the budget is used up
    # (or, quoted once it was, went through without it); the bonuses granted
    # are exactly the budget's use, and at most the budget
    errors = [r for r in results if not isinstance(r, (TopUpOrder, QuoteError))]
    assert not errors, errors
    orders = [r for r in results if isinstance(r, TopUpOrder)]
    assert all(order.status == "fulfilled" for order in orders)
    promoted = [o for o in orders if o.quote["promotion_id"] == promo.pk]
    refused = [r for r in results if isinstance(r, QuoteError)]
    promo.refresh_from_db()
    assert promo.budget_used == 500 * len(promoted) <= 5000
    if refused or len(promoted) < len(orders):
        assert promo.budget_used == 5000
    assert all(r.code == "promo_budget" for r in refused)
    _per_slice_exact(promo)
    ledger_ok()
