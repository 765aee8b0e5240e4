"""keep_plan on real lines, plans and promotions, replayed through real top-ups."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from leb.catalog.models import Plan, Promotion
from leb.catalog.quotes import quote
from leb.lines.models import Line
from leb.planner.planning import start_of_day
from leb.planner.queries import KeepPlan, default_target, keep_plan, time_zone
from leb.testing import topup

pytestmark = pytest.mark.django_db


def make_plan(code: str, price: int, days: int, currency: str = "HKD", **kw: Any) -> Plan:
    return Plan.objects.create(
        code=code,
        name_en=f"Plan {code}",
        name_zh_hans=f"套餐 {code}",
        name_zh_hant=f"套餐 {code}",
        currency=currency,
        price=price,
        credit=price,
        validity_days=days,
        **kw,
    )


def make_promotion(now: datetime, **kw: Any) -> Promotion:
    fields: dict[str, Any] = dict(
        code=f"promo-{Promotion.objects.count()}",
        name_en="Promo",
        name_zh_hans="优惠",
        name_zh_hant="優惠",
        currency="HKD",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=400),
    )
    fields.update(kw)
    plans = fields.pop("plans", [])
    promo = Promotion.objects.create(**fields)
    promo.plans.set(plans)
    return promo


def replay(line: Line, plan: KeepPlan) -> None:
    """Each step, quoted and then really topped up at its moment, gives the
    validity the plan says; the line is kept through the target."""
    for step in plan.steps:
        line.refresh_from_db()
        bought = Plan.objects.get(code=step.plan_code)
        assert step.at is not None
        quoted = quote(line, bought, step.channel, now=step.at)
        assert quoted.new_valid_until == step.valid_until_after_at
        assert quoted.price == step.price
        order = topup(line, bought, now=step.at, channel=step.channel)
        assert order.price == step.price
        line.refresh_from_db()
        assert line.valid_until == step.valid_until_after_at
    line.refresh_from_db()
    assert line.valid_until is not None
    grace = timedelta(days=line.policy.grace_days if plan.allow_grace else 0)
    end_of_target = start_of_day(plan.until + timedelta(days=1), time_zone())
    assert line.valid_until + grace >= end_of_target


def test_stack_plan_replays_through_real_top_ups(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given a HK line (stack, 365-day cap) valid 30 more days and three plans
    line = make_line()
    make_plan("hk-year", 8800, 365)
    make_plan("hk-month", 2000, 30, channels=["web"])
    # when
    plan = keep_plan(line, date(2029, 6, 1), now=now)
    # then a year plan the day before each expiry (the cap, counted from that
    # day, takes one day off each time)
    assert plan.feasible and plan.reason == ""
    assert plan.total == sum(step.price for step in plan.steps) == 3 * 8800
    assert [step.plan_code for step in plan.steps] == ["hk-year"] * 3
    assert [(step.on, step.valid_until_after) for step in plan.steps] == [
        (date(2026, 6, 30), date(2027, 6, 30)),
        (date(2027, 6, 29), date(2028, 6, 28)),
        (date(2028, 6, 27), date(2029, 6, 27)),
    ]
    assert all(step.channel == "auto" for step in plan.steps)
    replay(line, plan)
    ledger_ok()


def test_reset_plan_replays_through_real_top_ups(
    make_line: Any, uk_policy: Any, gbp_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given a UK line under the reset rule, valid 180 days
    line = make_line(policy=uk_policy, currency="GBP")
    # when
    plan = keep_plan(line, date(2028, 1, 31), now=now)
    # then each top-up counts 180 days from its own day
    assert plan.feasible
    for step in plan.steps:
        assert step.valid_until_after == step.on + timedelta(days=180)
    replay(line, plan)
    ledger_ok()


def test_cap_forces_more_frequent_top_ups(make_line: Any, hk_policy: Any, now: datetime) -> None:
    # given a 2-year plan on a line whose validity is capped at 365 days
    line = make_line()
    make_plan("hk-2y", 9000, 730)
    # when
    plan = keep_plan(line, date(2029, 6, 1), now=now)
    # then a top-up a year, never more than 365 days ahead
    assert len(plan.steps) == 3
    for step in plan.steps:
        assert step.valid_until_after <= step.on + timedelta(days=365)
    replay(line, plan)


def test_only_plans_on_sale_for_the_currency_and_channel(
    make_line: Any, gbp_plan: Plan, now: datetime
) -> None:
    # given plans: GBP only, IVR only, web only (dear), off sale, and one for auto
    line = make_line()
    make_plan("ivr-cheap", 100, 365, channels=["ivr"])
    make_plan("off-sale", 100, 365, is_active=False)
    make_plan("ended", 100, 365, active_until=now - timedelta(days=1))
    make_plan("web-only", 3000, 365, channels=["web"])
    make_plan("auto-dear", 5000, 365, channels=["auto"])
    # when
    plan = keep_plan(line, date(2027, 6, 1), now=now)
    # then the cheapest one sold on auto or web
    assert [(s.plan_code, s.channel, s.price) for s in plan.steps] == [("web-only", "web", 3000)]


def test_a_plan_leaving_sale_is_bought_while_it_is_on_sale(make_line: Any, now: datetime) -> None:
    # given a cheap half-year plan on sale for 10 more days, then a dear one
    line = make_line()
    make_plan("cheap", 1000, 180, active_until=now + timedelta(days=10))
    make_plan("dear", 6000, 180)
    # when
    plan = keep_plan(line, date(2027, 6, 1), now=now)
    # then it is stocked up to the cap before it leaves sale
    cheap = [s for s in plan.steps if s.plan_code == "cheap"]
    assert len(cheap) == 2
    assert all(s.on < date(2026, 6, 11) for s in cheap)
    assert plan.total == 2000 + 6000 * (len(plan.steps) - 2)
    replay(line, plan)


def test_a_plan_coming_on_sale_is_waited_for(make_line: Any, hkd_plan: Plan, now: datetime) -> None:
    # given a cheap year plan from 1 July 2026 on
    line = make_line()
    make_plan("later", 1000, 365, active_from=datetime(2026, 6, 29, 16, tzinfo=now.tzinfo))
    # when
    plan = keep_plan(line, date(2027, 6, 1), now=now)
    # then it is bought the first day it is on sale all day (30 June, HK)
    assert [(s.plan_code, s.on) for s in plan.steps] == [("later", date(2026, 6, 30))]


def test_guaranteed_promotion_is_counted_and_matches_the_top_up(
    make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any
) -> None:
    # given an automatic 20% discount with 15 bonus days, a code promotion and
    # a budgeted one that a top-up may or may not get
    line = make_line()
    make_promotion(now, discount_percent=20, bonus_days=15, code="auto-20")
    make_promotion(now, promo_code="HALF", discount_percent=50, code="code-50")
    # when
    plan = keep_plan(line, date(2027, 6, 1), now=now)
    # then
    assert (plan.steps[0].price, plan.steps[0].promotion_code) == (4000, "auto-20")
    assert plan.steps[0].valid_until_after == date(2026, 7, 1) + timedelta(days=195)
    replay(line, plan)
    ledger_ok()


def test_budgeted_promotion_is_not_counted_on(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    # given only a budgeted promotion with bonus days
    line = make_line()
    make_promotion(now, discount_percent=10, bonus_days=30, budget=100_000, code="budget")
    # when
    plan = keep_plan(line, date(2027, 6, 1), now=now)
    # then the plan assumes full price and no bonus
    assert [(s.price, s.promotion_code) for s in plan.steps] == [(5000, ""), (5000, "")]
    assert plan.steps[0].valid_until_after == date(2026, 7, 1) + timedelta(days=180)


def test_per_line_limit_counts_earlier_uses(make_line: Any, hkd_plan: Plan, now: datetime) -> None:
    # given a promotion usable twice per line, used once already
    line = make_line()
    make_promotion(now, discount_percent=50, per_line_limit=2, code="twice")
    topup(line, hkd_plan, now=now)
    line.refresh_from_db()
    # when
    plan = keep_plan(line, date(2028, 6, 1), now=now)
    # then only one more step is at half price
    assert [s.price for s in plan.steps].count(2500) == 1
    replay(line, plan)


def test_allow_grace_is_cheaper_and_counts_receive_only_days(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    # given a HK line with 30 grace days and a 180-day plan
    line = make_line()
    # when
    strict = keep_plan(line, date(2028, 9, 1), now=now)
    lenient = keep_plan(line, date(2028, 9, 1), now=now, allow_grace=True)
    # then: topping up in grace gains the grace days (stack from the top-up)
    assert (len(strict.steps), len(lenient.steps)) == (5, 4)
    assert lenient.total < strict.total
    assert strict.receive_only_days == 0
    assert lenient.receive_only_days > 0
    replay(line, lenient)


@pytest.mark.parametrize(
    ("until", "allow_grace"), [(date(2027, 6, 1), False), (date(2029, 12, 31), True)]
)
def test_plan_names_are_in_the_active_language(
    make_line: Any, hkd_plan: Plan, now: datetime, until: date, allow_grace: bool
) -> None:
    from django.utils import translation

    line = make_line()
    with translation.override("zh-hant"):
        plan = keep_plan(line, until, now=now, allow_grace=allow_grace)
    assert {s.plan_name for s in plan.steps} == {"50港元 / 180日"}


def test_infeasible_cases_say_why(make_line: Any, hk_policy: Any, now: datetime) -> None:
    # given a line and no plan on sale
    line = make_line()
    inventory = make_line(activate=False)
    # when / then
    no_plans = keep_plan(line, date(2027, 1, 1), now=now)
    assert not no_plans.feasible and "No plan" in no_plans.reason
    past = keep_plan(line, date(2026, 5, 31), now=now)
    assert not past.feasible and "past" in past.reason
    far = keep_plan(line, date(2060, 1, 1), now=now)
    assert not far.feasible and "30 years" in far.reason
    assert "not activated" in keep_plan(inventory, date(2027, 1, 1), now=now).reason
    lost = now + timedelta(days=30 + 30 + 60 + 1)
    terminated = keep_plan(line, date(2030, 1, 1), now=lost)
    assert not terminated.feasible and "terminated" in terminated.reason
    assert terminated.steps == [] and terminated.total == 0


def test_plans_that_leave_sale_too_early_are_infeasible(make_line: Any, now: datetime) -> None:
    line = make_line()
    make_plan("brief", 1000, 30, active_until=now + timedelta(days=5))
    plan = keep_plan(line, date(2030, 1, 1), now=now)
    assert not plan.feasible
    assert "stop being sold" in plan.reason


def test_already_kept_needs_no_top_up(make_line: Any, hkd_plan: Plan, now: datetime) -> None:
    line = make_line()
    plan = keep_plan(line, date(2026, 6, 30), now=now)
    assert plan.feasible and plan.steps == [] and plan.total == 0


def test_default_target_is_three_years_ahead(now: datetime) -> None:
    assert default_target(now) == date(2029, 6, 1)
    assert default_target(datetime(2028, 2, 29, 4, tzinfo=now.tzinfo)) == date(2031, 2, 28)


def test_queries_do_not_grow_with_the_catalog(
    make_line: Any, now: datetime, django_assert_max_num_queries: Any
) -> None:
    # given many plans and promotions
    line = make_line()
    plans = [make_plan(f"p{i}", 1000 + 100 * i, 30 * (i + 1)) for i in range(10)]
    for i in range(5):
        make_promotion(now, discount_percent=5 * i, plans=plans[:i], per_line_limit=i or None)
    line = Line.objects.select_related("policy").get(pk=line.pk)
    # when / then: plans, promotions with their use counts, promotion plans
    with django_assert_max_num_queries(3):
        plan = keep_plan(line, date(2031, 6, 1), now=now)
    assert plan.feasible


def test_steps_say_the_days_really_added_under_the_cap(db: Any, make_line: Any, now: Any) -> None:
    """Under the 365-day cap a 365-day plan topped up a day before the line
    runs out adds fewer days than its plan: the step says how many."""
    from datetime import timedelta

    from leb.catalog.models import Plan
    from leb.planner.queries import keep_plan

    Plan.objects.create(
        code="hk-365",
        name_en="HK$100 / 365 days",
        name_zh_hans="100港元 / 365天",
        name_zh_hant="100港元 / 365日",
        currency="HKD",
        price=10000,
        credit=10000,
        validity_days=365,
        channels=["auto", "web"],
    )
    line = make_line()
    plan = keep_plan(line, (now + timedelta(days=800)).date(), now=now)
    assert plan.feasible and plan.steps
    for step in plan.steps:
        assert 1 <= step.days_added <= step.days == 365
    assert any(step.adds_fewer_days for step in plan.steps)
