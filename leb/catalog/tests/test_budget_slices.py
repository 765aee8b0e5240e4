"""A promotion's budget is held in slices: reservations take from one slice,
the cap stays exact (a reservation is refused only when the whole budget
lacks room, never lets the use pass the budget), releases give back where
they took, and staff edits share the budget out again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from leb.catalog import budgets
from leb.catalog.actions import (
    do_create_promotion,
    do_update_promotion,
    reclaim_promotion,
    release_promotion,
    reserve_promotion,
    use_promotion,
)
from leb.catalog.models import Plan, Promotion, PromotionBudgetSlice, PromotionRedemption
from leb.catalog.queries import attach_budget_used, current_promotions, with_budget_used
from leb.catalog.quotes import QuoteError, quote
from leb.testing import topup

pytestmark = pytest.mark.django_db

ACTOR = "staff:budget"


@pytest.fixture(autouse=True)
def _four_slices(settings: Any) -> None:
    settings.PROMOTION_BUDGET_SLICES = 4


def promo_fields(now: datetime, **overrides: Any) -> dict[str, Any]:
    return {
        "code": "bonus",
        "name_en": "Bonus",
        "name_zh_hans": "赠送",
        "name_zh_hant": "贈送",
        "currency": "HKD",
        "bonus_credit_fixed": 500,
        "starts_at": now - timedelta(days=1),
        "ends_at": now + timedelta(days=30),
        "budget": 1000,
        **overrides,
    }


def slices(promo: Promotion) -> list[tuple[int, int]]:
    """(allotment, used) of each slice, in slot order."""
    return list(
        PromotionBudgetSlice.objects.filter(promotion=promo)
        .order_by("slot")
        .values_list("allotment", "used")
    )


def assert_exact(promo: Promotion) -> None:
    """Each slice's use is what its redemptions hold; the allotments sum to
    the budget and no slice is past its own, or the slices are closed."""
    promo = Promotion.objects.get(pk=promo.pk)
    rows = PromotionBudgetSlice.objects.filter(promotion=promo).order_by("slot")
    for piece in rows:
        held = sum(
            PromotionRedemption.objects.filter(
                promotion=promo, slot=piece.slot, state__in=["reserved", "used"]
            ).values_list("cost", flat=True)
        )
        assert piece.used == held, (piece, held)
    used = sum(piece.used for piece in rows)
    assert promo.budget_used == used
    if promo.budget is not None:
        # Closed (every allotment 0) while the use is above the budget, and
        # after it came back within until the next reservation opens it.
        closed = all(piece.allotment == 0 for piece in rows)
        assert closed or used <= promo.budget
        assert closed or sum(piece.allotment for piece in rows) == promo.budget
        assert closed or all(piece.used <= piece.allotment for piece in rows)


def reserve(promo: Promotion, line: Any, ref: str, cost: int, now: datetime) -> Any:
    with transaction.atomic():
        return reserve_promotion(promo.pk, line, ref, cost, now)


def test_a_new_budget_is_shared_out_over_its_slices(now: datetime) -> None:
    # when
    promo = do_create_promotion(promo_fields(now, budget=1003), actor=ACTOR, now=now)
    # then
    assert slices(promo) == [(251, 0), (251, 0), (251, 0), (250, 0)]
    assert promo.budget_used == 0
    assert_exact(promo)


def test_a_promotion_without_a_budget_has_no_slices_and_charges_nothing(
    now: datetime, make_line: Callable[..., Any]
) -> None:
    promo = do_create_promotion(promo_fields(now, budget=None), actor=ACTOR, now=now)
    redemption = reserve(promo, make_line(), "o1", 500, now)
    assert redemption.slot is None
    assert slices(promo) == []
    assert promo.budget_used == 0


def test_the_cap_is_hit_exactly_when_no_slice_alone_has_room(
    now: datetime, make_line: Callable[..., Any]
) -> None:
    # given a budget of 1500 in four slices of 375: no slice alone covers 500
    promo = do_create_promotion(promo_fields(now, budget=1500), actor=ACTOR, now=now)
    lines = [make_line() for _ in range(4)]
    # when four lines reserve 500 each
    for i in range(3):
        reserve(promo, lines[i], f"o{i}", 500, now)
        assert_exact(promo)
    # then three fit, the fourth is refused, and the use is exactly the budget
    with pytest.raises(QuoteError) as refused:
        reserve(promo, lines[3], "o3", 500, now)
    assert refused.value.code == "promo_budget"
    assert Promotion.objects.get(pk=promo.pk).budget_used == 1500
    assert not PromotionRedemption.objects.filter(order_ref="o3").exists()
    assert_exact(promo)


def test_fragmented_room_is_gathered_for_one_reservation(
    now: datetime, make_line: Callable[..., Any]
) -> None:
    # given 1000 in four slices of 250, each with 200 of it used: 50 left in each
    promo = do_create_promotion(promo_fields(now, budget=1000), actor=ACTOR, now=now)
    lines = [make_line() for _ in range(6)]
    for i in range(4):
        reserve(promo, lines[i], f"o{i}", 200, now)
    assert sorted(used for _a, used in slices(promo)) == [200, 200, 200, 200]
    assert all(allotment - used == 50 for allotment, used in slices(promo))
    # when a reservation needs 200: no slice has it, the whole budget does
    redemption = reserve(promo, lines[4], "o4", 200, now)
    # then it is taken, and the budget is full to the unit
    assert redemption.slot is not None
    assert Promotion.objects.get(pk=promo.pk).budget_used == 1000
    assert_exact(promo)
    with pytest.raises(QuoteError):
        reserve(promo, lines[5], "o5", 1, now)
    assert_exact(promo)


def test_a_reservation_uses_its_lines_slot_while_it_has_room(
    now: datetime, make_line: Callable[..., Any]
) -> None:
    promo = do_create_promotion(promo_fields(now, budget=1000), actor=ACTOR, now=now)
    line = make_line()
    redemption = reserve(promo, line, "o1", 100, now)
    assert redemption.slot == line.pk % 4
    assert slices(promo)[line.pk % 4] == (250, 100)


@pytest.mark.parametrize("first_on_slot_0", [True, False])
def test_a_release_gives_the_cost_back_to_its_slice(
    now: datetime, make_line: Callable[..., Any], first_on_slot_0: bool
) -> None:
    # given a full budget, the first line's slot 0 (where the exact path puts
    # the room left, so the second reservation lands there too) or not
    promo = do_create_promotion(promo_fields(now, budget=1000), actor=ACTOR, now=now)
    first_line = make_line()
    while (first_line.pk % 4 == 0) != first_on_slot_0:
        first_line = make_line()
    lines = [first_line, make_line(), make_line()]
    first = reserve(promo, lines[0], "o1", 500, now)
    second = reserve(promo, lines[1], "o2", 500, now)
    assert (second.slot == first.slot) == first_on_slot_0
    use_promotion("o2")
    with pytest.raises(QuoteError):
        reserve(promo, lines[2], "o3", 500, now)
    # when the unpaid order's reservation is released
    with transaction.atomic():
        release_promotion("o1")
    # then its slice has the room back, and another line can take it
    assert Promotion.objects.get(pk=promo.pk).budget_used == 500
    assert slices(promo)[first.slot][1] == (500 if first_on_slot_0 else 0)
    assert_exact(promo)
    reserve(promo, lines[2], "o3", 500, now)
    assert_exact(promo)
    # and a release of a used redemption waits for include_used (a refund)
    with transaction.atomic():
        release_promotion("o2")
    assert Promotion.objects.get(pk=promo.pk).budget_used == 1000
    with transaction.atomic():
        release_promotion("o2", include_used=True)
        release_promotion("o2", include_used=True)
    assert Promotion.objects.get(pk=promo.pk).budget_used == 500
    assert_exact(promo)


def test_a_reclaim_may_overrun_and_then_nothing_more_is_reserved_until_use_is_back_within(
    now: datetime, make_line: Callable[..., Any]
) -> None:
    # given an expired order's released reservation, and its room taken by another
    promo = do_create_promotion(promo_fields(now, budget=500), actor=ACTOR, now=now)
    lines = [make_line() for _ in range(3)]
    reserve(promo, lines[0], "late", 500, now)
    with transaction.atomic():
        release_promotion("late")
    reserve(promo, lines[1], "paid", 500, now)
    # when the late payment arrives
    with transaction.atomic():
        reclaim_promotion("late")
    # then its cost is charged anyway: the overrun shows, every allotment is 0
    promo.refresh_from_db()
    assert promo.budget_used == 1000
    assert all(allotment == 0 for allotment, _used in slices(promo))
    assert PromotionRedemption.objects.get(order_ref="late").state == "reserved"
    assert_exact(promo)
    # and nothing is reserved while the use is above the budget, nor at it
    for ref in ("x1", "x2"):
        with pytest.raises(QuoteError):
            reserve(promo, lines[2], ref, 1, now)
        with transaction.atomic():
            release_promotion("paid" if ref == "x1" else "late")
        assert_exact(promo)
    # once both are released the budget opens again, whole
    assert Promotion.objects.get(pk=promo.pk).budget_used == 0
    reserve(promo, lines[2], "x3", 500, now)
    assert_exact(promo)
    assert sum(allotment for allotment, _used in slices(promo)) == 500


def test_a_reclaim_within_the_budget_takes_a_slice_with_room(
    now: datetime, make_line: Callable[..., Any]
) -> None:
    promo = do_create_promotion(promo_fields(now, budget=1000), actor=ACTOR, now=now)
    reserve(promo, make_line(), "late", 500, now)
    with transaction.atomic():
        release_promotion("late")
        reclaim_promotion("late")
        reclaim_promotion("late")
    assert Promotion.objects.get(pk=promo.pk).budget_used == 500
    assert PromotionRedemption.objects.get(order_ref="late").slot is not None
    assert_exact(promo)


def test_raising_a_budget_shares_the_new_room_out(
    now: datetime, make_line: Callable[..., Any]
) -> None:
    # given a budget used up
    promo = do_create_promotion(promo_fields(now, budget=1000), actor=ACTOR, now=now)
    lines = [make_line() for _ in range(3)]
    reserve(promo, lines[0], "o1", 500, now)
    reserve(promo, lines[1], "o2", 500, now)
    # when staff raise it
    promo = do_update_promotion(promo, {"budget": 2000}, actor=ACTOR, now=now)
    # then the uses stay, the allotments sum to the new budget
    assert_exact(promo)
    assert Promotion.objects.get(pk=promo.pk).budget_used == 1000
    reserve(promo, lines[2], "o3", 1000, now)
    assert Promotion.objects.get(pk=promo.pk).budget_used == 2000
    assert_exact(promo)


def test_lowering_a_budget_below_its_use_is_allowed_and_ends_the_promotion(
    now: datetime, make_line: Callable[..., Any], hkd_plan: Plan
) -> None:
    # given 800 of 2000 used
    promo = do_create_promotion(promo_fields(now, budget=2000), actor=ACTOR, now=now)
    lines = [make_line() for _ in range(3)]
    reserve(promo, lines[0], "o1", 400, now)
    reserve(promo, lines[1], "o2", 400, now)
    # when staff lower it to 500, below the use
    promo = do_update_promotion(promo, {"budget": 500}, actor=ACTOR, now=now)
    # then the change is kept, the use too, and nothing more is reserved
    promo = Promotion.objects.get(pk=promo.pk)
    assert (promo.budget, promo.budget_used) == (500, 800)
    assert_exact(promo)
    with pytest.raises(QuoteError):
        reserve(promo, lines[2], "o3", 1, now)
    assert quote(lines[2], hkd_plan, "web", now=now).promotion_id is None
    # until releases bring the use back within it
    with transaction.atomic():
        release_promotion("o1")
    reserve(promo, lines[2], "o3", 100, now)
    assert Promotion.objects.get(pk=promo.pk).budget_used == 500
    assert_exact(promo)


def test_removing_and_restoring_a_budget_keeps_its_use(
    now: datetime, make_line: Callable[..., Any]
) -> None:
    promo = do_create_promotion(promo_fields(now, budget=1000), actor=ACTOR, now=now)
    lines = [make_line() for _ in range(3)]
    reserve(promo, lines[0], "o1", 500, now)
    # without a budget nothing is charged
    promo = do_update_promotion(promo, {"budget": None}, actor=ACTOR, now=now)
    assert reserve(promo, lines[1], "o2", 500, now).slot is None
    assert Promotion.objects.get(pk=promo.pk).budget_used == 500
    # with one again, what was charged still counts
    promo = do_update_promotion(promo, {"budget": 1000}, actor=ACTOR, now=now)
    assert_exact(promo)
    reserve(promo, lines[2], "o3", 500, now)
    assert Promotion.objects.get(pk=promo.pk).budget_used == 1000
    with transaction.atomic():
        release_promotion("o2")
    assert Promotion.objects.get(pk=promo.pk).budget_used == 1000
    assert_exact(promo)


def test_a_budget_set_without_saving_gets_its_slices_at_the_first_reservation(
    now: datetime, make_line: Callable[..., Any]
) -> None:
    promo = do_create_promotion(promo_fields(now, budget=None), actor=ACTOR, now=now)
    Promotion.objects.filter(pk=promo.pk).update(budget=600)
    reserve(promo, make_line(), "o1", 500, now)
    with pytest.raises(QuoteError):
        reserve(promo, make_line(), "o2", 500, now)
    assert sum(allotment for allotment, _used in slices(promo)) == 600
    assert_exact(promo)


def test_a_promotion_may_start_with_budget_already_spent(now: datetime) -> None:
    promo = Promotion(**promo_fields(now, budget=1000))
    promo.budget_used = 600
    assert promo.budget_used == 600
    promo.save()
    assert Promotion.objects.get(pk=promo.pk).budget_used == 600
    assert sum(allotment for allotment, _used in slices(promo)) == 1000
    # after that its use moves only with orders
    with pytest.raises(AttributeError):
        promo.budget_used = 0


def test_lists_read_the_budget_use_in_the_same_query(
    now: datetime, make_line: Callable[..., Any], hkd_plan: Plan, django_assert_num_queries: Any
) -> None:
    promo = do_create_promotion(promo_fields(now, budget=1000), actor=ACTOR, now=now)
    reserve(promo, make_line(), "o1", 500, now)
    with django_assert_num_queries(1):
        [loaded] = with_budget_used(Promotion.objects.all())
        assert loaded.budget_used == 500
    plain = [Promotion.objects.get(pk=promo.pk)]
    with django_assert_num_queries(1):
        attach_budget_used(plain)
        assert plain[0].budget_used == 500
    views = current_promotions(now)
    assert [v.promotion.budget_used for v in views] == [500]


def test_a_budget_too_low_for_a_plan_is_not_quoted(
    now: datetime, make_line: Callable[..., Any], hkd_plan: Plan
) -> None:
    # given 500 of a 1000 budget left, for a bonus of 600 (the plan's credit is 5000)
    promo = do_create_promotion(
        promo_fields(now, budget=1100, bonus_credit_fixed=600), actor=ACTOR, now=now
    )
    reserve(promo, make_line(), "o1", 600, now)
    # then checkout does not offer it
    assert quote(make_line(), hkd_plan, "web", now=now).promotion_id is None
    assert current_promotions(now) == []


def test_top_ups_charge_expire_and_refund_through_the_slices(
    now: datetime, make_line: Callable[..., Any], hkd_plan: Plan, ledger_ok: Any
) -> None:
    # given an automatic bonus of 500 with room for two
    promo = do_create_promotion(promo_fields(now, budget=1000), actor=ACTOR, now=now)
    lines = [make_line() for _ in range(3)]
    # when two lines top up
    first = topup(lines[0], hkd_plan, now=now)
    topup(lines[1], hkd_plan, now=now)
    # then both got the bonus and the budget is used up; a third gets none
    assert first.quote["bonus_credit"] == 500
    assert Promotion.objects.get(pk=promo.pk).budget_used == 1000
    third = topup(lines[2], hkd_plan, now=now)
    assert third.quote["promotion_id"] is None
    assert_exact(promo)
    ledger_ok()


def test_the_migration_moves_the_use_into_slices_and_back(
    transactional_db: Any, now: datetime, make_line: Callable[..., Any]
) -> None:
    # given a promotion with 700 of 1000 used, under the old column
    executor = MigrationExecutor(connection)
    executor.migrate([("catalog", "0002_redemption_labels")])
    executor.loader.build_graph()
    old = executor.loader.project_state([("catalog", "0002_redemption_labels")]).apps
    OldPromotion = old.get_model("catalog", "Promotion")
    OldRedemption = old.get_model("catalog", "PromotionRedemption")
    try:
        fields = promo_fields(now, budget=1000)
        fields.pop("bonus_credit_fixed")
        promo = OldPromotion.objects.create(**fields, budget_used=700)
        line = make_line()
        OldRedemption.objects.create(
            promotion=promo, line_id=line.pk, order_ref="o1", cost=700, state="used", created_at=now
        )
        # when the migration runs
        executor = MigrationExecutor(connection)
        executor.migrate([("catalog", "0003_budget_slices")])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    # then the use is in the first slice, held by its redemption, and it is exact
    current = Promotion.objects.get(pk=promo.pk)
    assert current.budget_used == 700
    assert PromotionRedemption.objects.get(order_ref="o1").slot == 0
    assert_exact(current)
    # and going back puts the sum in the column again
    executor = MigrationExecutor(connection)
    executor.migrate([("catalog", "0002_redemption_labels")])
    try:
        back = MigrationExecutor(connection).loader.project_state(
            [("catalog", "0002_redemption_labels")]
        )
        assert (
            back.apps.get_model("catalog", "Promotion").objects.get(pk=promo.pk).budget_used == 700
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_budget_pieces_share_room_in_whole_costs() -> None:
    assert budgets.spread(1000, 4) == [250, 250, 250, 250]
    assert budgets.spread(1003, 4) == [251, 251, 251, 250]
    assert budgets.spread(1100, 4, unit=500) == [600, 500, 0, 0]
    assert budgets.allotments(1000, [100, 0, 300, 0]) == [250, 150, 450, 150]
    assert budgets.allotments(500, [400, 400]) == [0, 0]
