"""The pure planner against an exhaustive search over every schedule."""

from __future__ import annotations

import functools
import math
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leb.lines import lifecycle
from leb.planner import planning

TZ = ZoneInfo("Asia/Hong_Kong")
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Hong Kong
DAY = timedelta(days=1)
DEPTH = 5


def make_policy(rule: str = "stack", cap: int | None = None, grace: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        first_topup_days=30,
        grace_days=grace,
        suspension_days=10,
        quarantine_days=90,
        max_validity_days=cap,
        extension_rule=rule,
    )


def plan(code: str, price: int, days: int, until: datetime | None = None) -> planning.PlanOption:
    return planning.PlanOption(
        code=code, name=code, price=price, credit=price, validity_days=days, on_sale_until=until
    )


def on_sale(option: planning.PlanOption, day: date, now: datetime, tz: Any = TZ) -> bool:
    first = now if day == planning.local_date(now, tz) else planning.start_of_day(day, tz)
    last = planning.start_of_day(day + DAY, tz)
    return (option.on_sale_from is None or option.on_sale_from <= first) and (
        option.on_sale_until is None or last <= option.on_sale_until
    )


def kept_until(policy: Any, valid_until: datetime, allow_grace: bool) -> datetime:
    return valid_until + timedelta(days=policy.grace_days) if allow_grace else valid_until


def runs(promo: planning.PromotionOption, day: date, now: datetime, tz: Any = TZ) -> bool:
    first = now if day == planning.local_date(now, tz) else planning.start_of_day(day, tz)
    return promo.starts_at <= first and planning.start_of_day(day + DAY, tz) <= promo.ends_at


def overlaps(promo: planning.PromotionOption, day: date, now: datetime, tz: Any = TZ) -> bool:
    first = now if day == planning.local_date(now, tz) else planning.start_of_day(day, tz)
    return promo.starts_at < planning.start_of_day(day + DAY, tz) and first < promo.ends_at


def terms(
    option: planning.PlanOption,
    promotions: list[planning.PromotionOption],
    day: date,
    now: datetime,
    used: int,
    tz: Any = TZ,
) -> tuple[int, int, int]:
    """(price, days, uses after) of a plan on a day, with at most one promotion:
    counted when it runs all day; when it runs part of the day only, a top-up
    may get it or not, so it is priced without it but its use is spent."""
    for promo in promotions:
        discount = min(option.price, option.price * promo.discount_percent // 100)
        if discount >= option.price or (promo.uses_left is not None and used >= promo.uses_left):
            continue
        if runs(promo, day, now, tz):
            return option.price - discount, option.validity_days + promo.bonus_days, used + 1
        if overlaps(promo, day, now, tz):
            return option.price, option.validity_days, used + 1
    return option.price, option.validity_days, used


def brute_force(
    policy: Any,
    valid_until: datetime,
    now: datetime,
    until: date,
    plans: list[planning.PlanOption],
    allow_grace: bool,
    promotions: list[planning.PromotionOption],
    tz: Any = TZ,
) -> float:
    """The cheapest cost over ALL schedules of at most DEPTH top-ups, on any
    days and with any plans, that keep the line (same safety rule: the line is
    kept through the whole day of each top-up; every top-up adds a whole day)."""
    today = planning.local_date(now, tz)
    goal = planning.start_of_day(until + DAY, tz)

    @functools.cache
    def cheapest(current: datetime, earliest: date, depth: int, first: bool, used: int) -> float:
        if kept_until(policy, current, allow_grace) >= goal:
            return 0
        if depth == 0:
            return math.inf
        latest = planning.local_date(kept_until(policy, current, allow_grace), tz) - DAY
        if first:
            latest = max(latest, today)
        result = math.inf
        day = earliest
        while day <= latest:
            at = planning.moment(day, today, now, tz)
            for option in plans:
                if not on_sale(option, day, now, tz):
                    continue
                price, days, uses = terms(option, promotions, day, now, used, tz)
                extension = lifecycle.extend_validity(policy, current, at, days)
                after = extension.valid_until
                # A top-up that adds no whole day is never made (quote() says "0 days").
                if after > current and extension.days_added >= 1:
                    result = min(result, price + cheapest(after, day, depth - 1, False, uses))
            day += DAY
        return result

    return cheapest(valid_until, today, DEPTH, True, 0)


def replay(
    policy: Any,
    valid_until: datetime,
    now: datetime,
    until: date,
    plans: list[planning.PlanOption],
    allow_grace: bool,
    schedule: planning.Schedule,
    promotions: list[planning.PromotionOption] = [],  # noqa: B006
    tz: Any = TZ,
) -> None:
    """Replays the schedule through the real validity arithmetic: each step is
    on a day the line is kept through, the plan is on sale, the validity is
    what the step says, and the line is kept through the target."""
    by_code = {p.code: p for p in plans}
    today = planning.local_date(now, tz)
    current, previous_day, used = valid_until, today, 0
    for index, step in enumerate(schedule.steps):
        assert step.on >= previous_day
        urgent = index == 0 and kept_until(policy, current, allow_grace) < planning.start_of_day(
            today + DAY, tz
        )
        if urgent:
            assert step.on == today
        else:
            assert kept_until(policy, current, allow_grace) >= planning.start_of_day(
                step.on + DAY, tz
            )
        if not allow_grace and not urgent:
            assert step.receive_only_days == 0
        option = by_code[step.plan_code]
        assert on_sale(option, step.on, now, tz)
        assert step.at == planning.moment(step.on, today, now, tz)
        price, days, used = terms(option, promotions, step.on, now, used, tz)
        assert (step.price, step.days) == (price, days)
        extension = lifecycle.extend_validity(policy, current, step.at, days)
        after = extension.valid_until
        assert step.valid_until_before == current
        assert step.valid_until_after == after
        # the real days added, never none
        assert step.days_added == extension.days_added >= 1
        current, previous_day = after, step.on
    assert kept_until(policy, current, allow_grace) >= planning.start_of_day(until + DAY, tz)
    assert schedule.total == sum(step.price for step in schedule.steps)


@st.composite
def cases(draw: Any) -> dict[str, Any]:
    # Hong Kong has no daylight saving time; London does (29 March, 25 October).
    tz = draw(st.sampled_from([TZ, ZoneInfo("Europe/London")]))
    rule = draw(st.sampled_from(["stack", "reset"]))
    cap = draw(st.one_of(st.none(), st.integers(1, 25)))
    allow_grace = draw(st.booleans())
    grace = draw(st.integers(0, 4))
    # Some cases run across a change of the clocks in London.
    base = draw(
        st.sampled_from(
            [NOW, datetime(2026, 10, 20, 4, tzinfo=UTC), datetime(2027, 3, 22, 4, tzinfo=UTC)]
        )
    )
    now = base + timedelta(hours=draw(st.integers(-12, 11)))
    count = draw(st.integers(1, 4))
    plans = []
    for index in range(count):
        leaves = draw(st.one_of(st.none(), st.integers(0, 20 * 24)))
        plans.append(
            plan(
                f"p{index}",
                draw(st.integers(1, 60)),
                draw(st.integers(1, 14)),
                now + timedelta(hours=leaves) if leaves is not None else None,
            )
        )
    valid_until = now + timedelta(hours=draw(st.integers(-24 * 3, 24 * 8)))
    until = planning.local_date(now, tz) + timedelta(days=draw(st.integers(0, 16)))
    promotions = []
    if draw(st.booleans()):
        starts = now + timedelta(hours=draw(st.integers(-48, 10 * 24)))
        promotions.append(
            planning.PromotionOption(
                code="promo",
                starts_at=starts,
                ends_at=starts + timedelta(hours=draw(st.integers(1, 12 * 24))),
                discount_percent=draw(st.integers(0, 100)),
                bonus_days=draw(st.integers(0, 5)),
                uses_left=draw(st.one_of(st.none(), st.integers(1, 2))),
            )
        )
    return dict(
        tz=tz,
        promotions=promotions,
        policy=make_policy(rule, cap, grace),
        valid_until=valid_until,
        now=now,
        until=until,
        plans=plans,
        allow_grace=allow_grace,
    )


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_never_dearer_than_any_schedule_and_really_keeps_the_line(case: dict[str, Any]) -> None:
    # given a random small case
    # when
    schedule = planning.cheapest_schedule(**case)
    best = brute_force(**case)
    # then
    if best < math.inf:
        assert schedule.feasible
    if schedule.feasible:
        replay(schedule=schedule, **case)
        assert schedule.total <= best
        if len(schedule.steps) <= DEPTH:
            # The exhaustive search saw this schedule: both are optimal.
            assert schedule.total == best


def test_stack_keeps_every_day_of_each_top_up() -> None:
    # given a stack line valid until 20 June (HK time) and a 30-day plan
    valid_until = datetime(2026, 6, 20, 4, tzinfo=UTC)
    # when
    schedule = planning.cheapest_schedule(
        policy=make_policy("stack"),
        valid_until=valid_until,
        now=NOW,
        until=date(2026, 8, 31),
        plans=[plan("m", 10, 30)],
        tz=TZ,
    )
    # then: the day before each expiry, and days add to the validity
    assert [s.on for s in schedule.steps] == [
        date(2026, 6, 19),
        date(2026, 7, 19),
        date(2026, 8, 18),
    ]
    assert [s.valid_until_after for s in schedule.steps] == [
        valid_until + 30 * DAY,
        valid_until + 60 * DAY,
        valid_until + 90 * DAY,
    ]
    assert schedule.total == 30


def test_reset_counts_from_the_top_up() -> None:
    # given the same line under the reset rule
    valid_until = datetime(2026, 6, 20, 4, tzinfo=UTC)
    # when
    schedule = planning.cheapest_schedule(
        policy=make_policy("reset"),
        valid_until=valid_until,
        now=NOW,
        until=date(2026, 8, 31),
        plans=[plan("m", 10, 30)],
        tz=TZ,
    )
    # then: each top-up gives 30 days from its own day (one day is lost each time)
    steps = schedule.steps
    assert [s.on for s in steps] == [date(2026, 6, 19), date(2026, 7, 18), date(2026, 8, 16)]
    for step in steps:
        assert planning.local_date(step.valid_until_after, TZ) == step.on + 30 * DAY
    assert schedule.total == 30


def test_the_cap_forces_more_frequent_top_ups() -> None:
    # given a 365-day plan but a cap of 100 days of validity
    valid_until = datetime(2026, 6, 20, 4, tzinfo=UTC)
    plans = [plan("year", 50, 365)]

    def run(cap: int | None) -> planning.Schedule:
        return planning.cheapest_schedule(
            policy=make_policy("stack", cap),
            valid_until=valid_until,
            now=NOW,
            until=date(2027, 6, 1),
            plans=plans,
            tz=TZ,
        )

    # when
    uncapped, capped = run(None), run(100)
    # then
    assert len(uncapped.steps) == 1
    assert len(capped.steps) == 4
    for step in capped.steps:
        assert step.valid_until_after <= step.at + 100 * DAY


def test_a_cheaper_long_plan_beats_a_short_one() -> None:
    # given a 30-day plan at 10 and a 365-day plan at 80
    plans = [plan("month", 10, 30), plan("year", 80, 365)]
    # when
    schedule = planning.cheapest_schedule(
        policy=make_policy("stack"),
        valid_until=datetime(2026, 6, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2027, 6, 1),
        plans=plans,
        tz=TZ,
    )
    # then
    assert [s.plan_code for s in schedule.steps] == ["year"]
    assert schedule.total == 80


def test_a_plan_leaving_sale_is_used_before_it_leaves() -> None:
    # given a cheap year plan sold only until 1 August, then only a dear one
    leaves = datetime(2026, 7, 31, 16, tzinfo=UTC)  # 1 August 00:00 HK
    plans = [plan("cheap-year", 30, 365, until=leaves), plan("dear-year", 90, 365)]
    # when
    schedule = planning.cheapest_schedule(
        policy=make_policy("stack"),
        valid_until=datetime(2026, 12, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2028, 6, 1),
        plans=plans,
        tz=TZ,
    )
    # then: two cheap top-ups on its last day on sale cover it all
    assert [(s.plan_code, s.on) for s in schedule.steps] == [
        ("cheap-year", date(2026, 7, 31)),
        ("cheap-year", date(2026, 7, 31)),
    ]
    assert schedule.total == 60


def test_a_plan_leaving_sale_before_the_need_makes_it_unreachable() -> None:
    # given the only plan leaves sale tomorrow and the cap stops stocking up
    plans = [plan("m", 10, 30, until=NOW + DAY)]
    # when
    schedule = planning.cheapest_schedule(
        policy=make_policy("stack", 60),
        valid_until=datetime(2026, 6, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2027, 6, 1),
        plans=plans,
        tz=TZ,
    )
    # then
    assert not schedule.feasible
    assert schedule.problem == "unreachable"


def test_no_plans() -> None:
    schedule = planning.cheapest_schedule(
        policy=make_policy(),
        valid_until=datetime(2026, 6, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2027, 6, 1),
        plans=[],
        tz=TZ,
    )
    assert (schedule.feasible, schedule.problem) == (False, "no_plans")


def test_already_kept() -> None:
    schedule = planning.cheapest_schedule(
        policy=make_policy(),
        valid_until=datetime(2027, 6, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2027, 6, 1),
        plans=[plan("m", 10, 30)],
        tz=TZ,
    )
    assert schedule.feasible and schedule.steps == () and schedule.total == 0


def test_allow_grace_is_cheaper_and_says_what_it_costs() -> None:
    # given a stack line with 30 grace days and a 30-day plan
    case = dict(
        policy=make_policy("stack", grace=30),
        valid_until=datetime(2026, 6, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2026, 12, 31),
        plans=[plan("m", 10, 30)],
        tz=TZ,
    )
    # when
    strict = planning.cheapest_schedule(**case)  # type: ignore[arg-type]
    lenient = planning.cheapest_schedule(allow_grace=True, **case)  # type: ignore[arg-type]
    # then
    assert lenient.total < strict.total
    assert strict.receive_only_days == 0
    assert lenient.receive_only_days > 0
    assert sum(s.receive_only_days for s in lenient.steps) <= lenient.receive_only_days


def test_allow_grace_spends_no_grace_when_it_saves_nothing() -> None:
    # given a reset line: topping up in grace gains nothing over the day before
    case = dict(
        policy=make_policy("reset", grace=5),
        valid_until=datetime(2026, 6, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2026, 7, 10),
        plans=[plan("y", 10, 365)],
        tz=TZ,
    )
    # when
    lenient = planning.cheapest_schedule(allow_grace=True, **case)  # type: ignore[arg-type]
    # then
    assert lenient.total == 10
    assert lenient.receive_only_days == 0


def test_a_lapsed_line_is_topped_up_today() -> None:
    # given a line that went into grace yesterday
    schedule = planning.cheapest_schedule(
        policy=make_policy("stack", grace=30),
        valid_until=NOW - DAY,
        now=NOW,
        until=date(2026, 6, 20),
        plans=[plan("m", 10, 30)],
        tz=TZ,
    )
    # then the first step is today, now
    assert schedule.steps[0].on == date(2026, 6, 1)
    assert schedule.steps[0].at == NOW
    assert schedule.steps[0].valid_until_after == NOW + 30 * DAY


def test_guaranteed_promotion_discount_and_bonus_days() -> None:
    # given a 50% discount with 10 bonus days in June and July
    promo = planning.PromotionOption(
        code="summer",
        starts_at=datetime(2026, 5, 1, tzinfo=UTC),
        ends_at=datetime(2026, 7, 31, 16, tzinfo=UTC),
        discount_percent=50,
        bonus_days=10,
    )
    budgeted = planning.PromotionOption(
        code="budgeted",
        starts_at=datetime(2026, 5, 1, tzinfo=UTC),
        ends_at=datetime(2027, 7, 31, tzinfo=UTC),
        discount_percent=90,
        has_budget=True,
    )
    # when
    schedule = planning.cheapest_schedule(
        policy=make_policy("stack"),
        valid_until=datetime(2026, 6, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2026, 9, 30),
        plans=[plan("m", 100, 30)],
        promotions=[promo],
        tz=TZ,
    )
    with_budgeted = planning.cheapest_schedule(
        policy=make_policy("stack"),
        valid_until=datetime(2026, 6, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2026, 9, 30),
        plans=[plan("m", 100, 30)],
        promotions=[promo, budgeted],
        tz=TZ,
    )
    # then: half price with 40 days, stocking up on the promotion's last day
    # rather than paying full price in September
    assert [(s.on, s.price, s.days) for s in schedule.steps] == [
        (date(2026, 6, 19), 50, 40),
        (date(2026, 7, 29), 50, 40),
        (date(2026, 7, 31), 50, 40),
    ]
    assert schedule.steps[0].promotion_code == "summer"
    # A budgeted promotion might win over it or run out: priced at the worst.
    assert [(s.on, s.price, s.days, s.promotion_code) for s in with_budgeted.steps] == [
        (date(2026, 6, 19), 50, 30, ""),
        (date(2026, 7, 19), 50, 30, ""),
        (date(2026, 7, 31), 50, 30, ""),
        (date(2026, 7, 31), 50, 30, ""),
    ]


def test_per_line_limit_is_respected() -> None:
    # given a promotion this line may use once more
    promo = planning.PromotionOption(
        code="once",
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        ends_at=datetime(2028, 1, 1, tzinfo=UTC),
        discount_percent=50,
        uses_left=1,
    )
    # when
    schedule = planning.cheapest_schedule(
        policy=make_policy("stack"),
        valid_until=datetime(2026, 6, 20, 4, tzinfo=UTC),
        now=NOW,
        until=date(2026, 9, 30),
        plans=[plan("m", 100, 30)],
        promotions=[promo],
        tz=TZ,
    )
    # then
    assert [s.price for s in schedule.steps] == [50, 100, 100, 100]


def test_five_years_ten_plans_is_exact_and_quick_enough_to_plan_on_a_page() -> None:
    # given ten plans and five years under a capped stack rule with grace
    plans = [
        plan(f"p{i}", 500 + 731 * i % 9000, [7, 30, 60, 90, 120, 180, 270, 365][i % 8] + i)
        for i in range(10)
    ]
    for allow_grace in (False, True):
        # when
        schedule = planning.cheapest_schedule(
            policy=make_policy("stack", 365, grace=30),
            valid_until=datetime(2026, 6, 20, 4, tzinfo=UTC),
            now=NOW,
            until=date(2031, 6, 1),
            plans=plans,
            allow_grace=allow_grace,
            tz=TZ,
        )
        # then
        replay(
            make_policy("stack", 365, grace=30),
            datetime(2026, 6, 20, 4, tzinfo=UTC),
            NOW,
            date(2031, 6, 1),
            plans,
            allow_grace,
            schedule,
        )


def test_a_promotion_counts_only_on_days_it_runs_all_day() -> None:
    # given a half-price promotion starting 5 June 10:00 and ending 12 June 10:00 (HK)
    promo = planning.PromotionOption(
        code="week",
        starts_at=datetime(2026, 6, 5, 2, tzinfo=UTC),
        ends_at=datetime(2026, 6, 12, 2, tzinfo=UTC),
        discount_percent=50,
    )
    case = dict(
        policy=make_policy("stack"),
        now=NOW,
        until=date(2026, 6, 20),
        plans=[plan("m", 100, 30)],
        promotions=[promo],
        tz=TZ,
    )
    # when the line runs out on 10 June, or on 6 June, or on 14 June
    mid = planning.cheapest_schedule(valid_until=datetime(2026, 6, 10, 4, tzinfo=UTC), **case)  # type: ignore[arg-type]
    early = planning.cheapest_schedule(valid_until=datetime(2026, 6, 6, 4, tzinfo=UTC), **case)  # type: ignore[arg-type]
    late = planning.cheapest_schedule(valid_until=datetime(2026, 6, 14, 4, tzinfo=UTC), **case)  # type: ignore[arg-type]
    # then: 6 to 11 June are covered all day; 5 June is not
    assert [(s.on, s.price) for s in mid.steps] == [(date(2026, 6, 9), 50)]
    assert [(s.on, s.price) for s in early.steps] == [(date(2026, 6, 5), 100)]
    assert [(s.on, s.price) for s in late.steps] == [(date(2026, 6, 11), 50)]
