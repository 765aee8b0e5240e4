"""The cheapest schedule of top-ups that keeps a line until a target date.

Pure: no database. `leb.planner.queries` loads the line, the plans and the
promotions and calls `cheapest_schedule`.

The model
---------
Time is counted in local days (LEB_TIME_ZONE). A top-up planned for day D is
priced and extended at one moment of that day, `moment(D)`: noon of D (for
today, `now`). Every extension goes through `lifecycle.extend_validity`, the
function a real top-up uses, with the same UTC instant `quote()` would get, so
the validity after each planned step is exactly what `quote(now=moment(D))`
gives; at any other time of day D the date is the same (the cap and the reset
rule count from the moment of the top-up, so only the hour differs).

Safety margin: a top-up planned for day D may run at any time during D (an
automatic top-up or a reminder runs some time in the day). So a step is only
planned on a day the line stays active (or, with `allow_grace`, keeps its
number in grace) until the END of that day: D <= local date of valid_until - 1
(resp. of valid_until + grace_days). We never plan on the day the validity
runs out.

Why topping up on the last safe day is optimal
----------------------------------------------
Write f(V, D, n) for the validity after topping up n days on day D from
validity V. For D no later than the last safe day of V:

* stack: f = max(V, moment(D)) + n: equal for every D while the line is
  active, and growing with D once in grace;
* reset: f = max(V, moment(D) + n): grows with D;
* cap: min(uncapped, moment(D) + cap), never below V: grows with D.

A step must add at least one whole day (`Extension.days_added`): what
adds less is what every channel calls "adds no days", never planned. The
days a step adds never decrease when it is made later either (while active
they grow with D; in grace they are the plan's days, capped), so the rule
does not break the argument below.

So f never decreases when the same top-up is made later, and never decreases
when V is larger; and a larger V also allows later days. Take any schedule
that keeps the line: within a stretch of days where the prices and bonuses of
every plan stay the same (a "segment": sale windows and promotion windows only
change at segment ends), moving each step, first to last, to the latest day
that is still safe and still in its segment keeps the order of the steps,
keeps the price of each step and gives at least the same validity after each
step. Hence an optimal schedule exists in which every step is on
min(last safe day, end of its segment). The search only tries those days
(plus, with allow_grace, the last strictly active day, so that among schedules
of equal cost it can pick the one with the fewest receive-only days).

The search
----------
States are (validity end, segment of the last step, uses of per-line-limited
promotions). Every useful step strictly increases the validity, so the states
form a DAG ordered by validity: they are settled in that order (a heap keyed
by validity), each relaxed once, with cost = (money, receive-only days, number
of steps, days paid ahead of the target) compared lexicographically: among
equally cheap schedules, the one with the least grace, the fewest top-ups and
the latest payments. A state with at least the validity of another, no later
segment, the same promotion uses and no higher cost does everything the other
does (every cost part only grows along a schedule, and never more from a
larger validity), so the other is dropped. The result is the exact minimum over
every schedule with steps on any days, by the argument above.

Promotions count only when guaranteed: automatic (no code), a window that
covers the whole planned day, no budget (a budget may run out) and uses left
under its per-line limit (tracked in the state). A promotion a top-up may or
may not get (budgeted, or running only part of that day) that `quote()` would
prefer over the guaranteed one makes that step pessimistic: the highest
possible price and the fewest possible bonus days.

Stocking up (a step on a segment's last day, before the last safe day: buying
ahead while a plan or promotion is still on) is only tried with plans the next
segment sells worse. Top-ups made on the same day commute, so such a step can
be made the day's last and then moved to the next day, still safe, at no
higher price and for at least the same validity.

The price of the margin: under a cap, a top-up the day before the validity
ends gets the cap counted from that day, one day earlier than needed.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, cast

from leb.catalog.quotes import _promotion_value
from leb.lines import lifecycle
from leb.lines.lifecycle import PolicyLike

# A promotion tracked per line multiplies the states by (uses left + 1); past
# this many combinations, limited promotions are treated as not guaranteed.
MAX_USE_COMBINATIONS = 64


@dataclass(frozen=True)
class PlanOption:
    code: str
    name: str
    price: int
    credit: int
    validity_days: int
    on_sale_from: datetime | None = None
    on_sale_until: datetime | None = None
    # The channel it is bought on: promotions limited to channels must match.
    channel: str = "auto"


@dataclass(frozen=True)
class PromotionOption:
    code: str
    starts_at: datetime
    ends_at: datetime
    discount_percent: int = 0
    discount_fixed: int = 0
    bonus_credit_percent: int = 0
    bonus_credit_fixed: int = 0
    bonus_days: int = 0
    # Empty: every plan.
    plan_codes: frozenset[str] = frozenset()
    # Empty: every channel.
    channels: frozenset[str] = frozenset()
    # A budget may run out before the planned day: never counted on.
    has_budget: bool = False
    # None: no per-line limit; otherwise the uses this line has left.
    uses_left: int | None = None


@dataclass(frozen=True)
class Step:
    on: date
    at: datetime
    plan_code: str
    plan_name: str
    list_price: int
    price: int
    days: int
    promotion_code: str
    valid_until_before: datetime
    valid_until_after: datetime
    receive_only_days: int
    # Whole days this step really adds (fewer than `days` when the cap or the
    # reset rule takes some); never 0: a step that adds nothing is not planned.
    days_added: int = 0


@dataclass(frozen=True)
class Schedule:
    feasible: bool
    steps: tuple[Step, ...] = ()
    total: int = 0
    # Days on which the line may be receive-only (grace), steps and the end.
    receive_only_days: int = 0
    # "" when feasible; else "no_plans" or "unreachable".
    problem: str = ""


@dataclass(frozen=True)
class _Terms:
    price: int
    list_price: int
    days: int
    promotion_code: str
    # Uses of each limited promotion after this step (counted when it may apply).
    uses: tuple[int, ...] = ()


@dataclass
class _Segment:
    first: date
    last: date
    terms: dict[tuple[int, ...], tuple[list[tuple[int, _Terms]], dict[int, _Terms]]] = field(
        default_factory=dict
    )


def local_date(at: datetime, tz: tzinfo) -> date:
    return at.astimezone(tz).date()


def start_of_day(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def moment(day: date, today: date, now: datetime, tz: tzinfo) -> datetime:
    """The instant a top-up planned for `day` is priced and extended at."""
    if day <= today:
        return now.astimezone(UTC)
    return datetime.combine(day, time(12), tzinfo=tz).astimezone(UTC)


def _covers(start: datetime | None, end: datetime | None, first: datetime, last: datetime) -> bool:
    return (start is None or start <= first) and (end is None or last <= end)


@dataclass(frozen=True)
class _Fit:
    """A promotion that can apply to a plan: what quote() ranks it by (value,
    then bonus days) and what the top-up then costs and adds."""

    promo: int
    rank: tuple[int, int]
    price: int
    bonus_days: int


_DAY = timedelta(days=1)
_State = tuple[datetime, int, tuple[int, ...]]
_Cost = tuple[int, int, int, int]


class _Front:
    """The (validity, cost) pairs no other pair beats (at least as much
    validity for no more cost): validity and cost both increase along it."""

    def __init__(self) -> None:
        self.ends: list[datetime] = []
        self.costs: list[_Cost] = []

    def dominates(self, end: datetime, cost: _Cost) -> bool:
        at = bisect.bisect_left(self.ends, end)
        return at < len(self.ends) and self.costs[at] <= cost

    def beats(self, end: datetime, cost: _Cost, *, same: bool) -> bool:
        """Whether another pair than (end, cost) itself dominates it."""
        at = bisect.bisect_left(self.ends, end)
        if at < len(self.ends) and same and (self.ends[at], self.costs[at]) == (end, cost):
            return False
        return at < len(self.ends) and self.costs[at] <= cost

    def add(self, end: datetime, cost: _Cost) -> None:
        at = bisect.bisect_left(self.ends, end)
        if at < len(self.ends) and self.ends[at] == end:
            del self.ends[at], self.costs[at]
        first = at
        while first > 0 and self.costs[first - 1] >= cost:
            first -= 1
        del self.ends[first:at], self.costs[first:at]
        self.ends.insert(first, end)
        self.costs.insert(first, cost)


class _Planner:
    def __init__(
        self,
        *,
        policy: PolicyLike,
        now: datetime,
        until: date,
        plans: Sequence[PlanOption],
        promotions: Sequence[PromotionOption],
        allow_grace: bool,
        tz: tzinfo,
    ) -> None:
        self.policy = policy
        self.now = now.astimezone(UTC)
        self.tz = tz
        self.today = local_date(now, tz)
        self.until = until
        self.plans = list(plans)
        self.allow_grace = allow_grace
        self.grace = timedelta(days=policy.grace_days)
        self.goal = start_of_day(until + timedelta(days=1), tz)
        limited = [p for p in promotions if not p.has_budget and p.uses_left is not None]
        combos = 1
        for promo in limited:
            combos *= (promo.uses_left or 0) + 1
        self.limited = limited if combos <= MAX_USE_COMBINATIONS else []
        self.guaranteed = [
            p for p in promotions if not p.has_budget and (p.uses_left is None or p in self.limited)
        ]
        self.uncertain = [p for p in promotions if p not in self.guaranteed]
        self.promotions = self.guaranteed + self.uncertain
        self.sure = [p in self.guaranteed for p in self.promotions]
        self.slots = [self.limited.index(p) if p in self.limited else -1 for p in self.promotions]
        self.fits = [self._fits(plan) for plan in self.plans]
        self.segments = self._segments()

    # --- segments and terms -------------------------------------------------

    def _segments(self) -> list[_Segment]:
        """Stretches of days over which every plan's and promotion's standing
        (on sale or not; running all day, part of the day or not) is the same."""
        edges: set[date] = {self.today, self.today + timedelta(days=1)}
        instants: list[datetime | None] = []
        for plan in self.plans:
            instants += [plan.on_sale_from, plan.on_sale_until]
        for promo in self.guaranteed + self.uncertain:
            instants += [promo.starts_at, promo.ends_at]
        for instant in instants:
            if instant is not None:
                day = local_date(instant, self.tz)
                edges.update(day + timedelta(days=k) for k in (-1, 0, 1, 2))
        bounds = sorted(d for d in edges if self.today <= d <= self.until)
        bounds.append(self.until + timedelta(days=1))
        segments: list[_Segment] = []
        standing: tuple[bool, ...] | None = None
        for first, following in itertools.pairwise(bounds):
            here = self._standing(first)
            if segments and here == standing and first != self.today + _DAY:
                segments[-1].last = following - _DAY
            else:
                segments.append(_Segment(first, following - _DAY))
            standing = here
        return segments

    def _standing(self, day: date) -> tuple[bool, ...]:
        first, last = self._day_span(day)
        flags = [_covers(p.on_sale_from, p.on_sale_until, first, last) for p in self.plans]
        for promo in self.guaranteed + self.uncertain:
            flags.append(_covers(promo.starts_at, promo.ends_at, first, last))
            flags.append(promo.starts_at < last and first < promo.ends_at)
        return tuple(flags)

    def _fits(self, plan: PlanOption) -> list[_Fit]:
        """The promotions that can apply to the plan, whatever the day."""
        fits = []
        for index, promo in enumerate(self.promotions):
            if promo.plan_codes and plan.code not in promo.plan_codes:
                continue
            if promo.channels and plan.channel not in promo.channels:
                continue
            discount, bonus = _promotion_value(cast(Any, promo), plan.price, plan.credit)
            if discount >= plan.price:
                continue
            rank = (discount + bonus, promo.bonus_days)
            fits.append(_Fit(index, rank, plan.price - discount, promo.bonus_days))
        return fits

    def _day_span(self, day: date) -> tuple[datetime, datetime]:
        first = self.now if day == self.today else start_of_day(day, self.tz)
        return first, start_of_day(day + timedelta(days=1), self.tz)

    def offers(self, segment: _Segment, used: tuple[int, ...]) -> list[tuple[int, _Terms]]:
        """(plan index, terms) of the plans on sale in the segment, without
        those another plan beats (no dearer, at least as many days, same
        promotion uses): a step with more days never gives less validity."""
        if used not in segment.terms:
            offers = []
            for index in range(len(self.plans)):
                terms = self._terms(segment.first, index, used)
                if terms is not None:
                    offers.append((index, terms))
            kept = []
            for index, terms in offers:
                beaten = any(
                    other.price <= terms.price
                    and other.days >= terms.days
                    and other.uses == terms.uses
                    and (other.price, -other.days, j) < (terms.price, -terms.days, index)
                    for j, other in offers
                )
                if not beaten:
                    kept.append((index, terms))
            segment.terms[used] = (kept, dict(offers))
        return segment.terms[used][0]

    def terms_by_plan(self, segment: _Segment, used: tuple[int, ...]) -> dict[int, _Terms]:
        self.offers(segment, used)
        return segment.terms[used][1]

    def _terms(self, day: date, plan_index: int, used: tuple[int, ...]) -> _Terms | None:
        plan = self.plans[plan_index]
        first, last = self._day_span(day)
        if not _covers(plan.on_sale_from, plan.on_sale_until, first, last):
            return None
        # Sure: guaranteed and running all day. Unsure: budgeted, or running
        # only part of the day, so a top-up may or may not get it.
        sure: list[_Fit] = []
        unsure: list[_Fit] = []
        for fit in self.fits[plan_index]:
            promo = self.promotions[fit.promo]
            slot = self.slots[fit.promo]
            if slot >= 0 and used[slot] >= (promo.uses_left or 0):
                continue
            if not (promo.starts_at < last and first < promo.ends_at):
                continue
            if self.sure[fit.promo] and _covers(promo.starts_at, promo.ends_at, first, last):
                sure.append(fit)
            else:
                unsure.append(fit)
        # What quote() picks: the highest value, then the most bonus days;
        # among equals, any of them.
        best = max((fit.rank for fit in sure), default=None)
        outcomes = [fit for fit in sure if fit.rank == best]
        outcomes += [fit for fit in unsure if best is None or fit.rank >= best]
        prices = [fit.price for fit in outcomes]
        bonus_days = [fit.bonus_days for fit in outcomes]
        if best is None:
            prices.append(plan.price)
            bonus_days.append(0)
        days = plan.validity_days + min(bonus_days)
        if days <= 0:
            return None
        new_used = list(used)
        for fit in outcomes:
            slot = self.slots[fit.promo]
            if slot >= 0:
                limit = self.promotions[fit.promo].uses_left or 0
                new_used[slot] = min(new_used[slot] + 1, limit)
        chosen = ""
        if len(outcomes) == 1 and best is not None:
            chosen = self.promotions[outcomes[0].promo].code
        return _Terms(max(prices), plan.price, days, chosen, tuple(new_used))

    # --- search ---------------------------------------------------------------

    def last_safe_day(self, valid_until: datetime, *, grace: bool) -> date:
        end = valid_until + self.grace if grace else valid_until
        return local_date(end, self.tz) - timedelta(days=1)

    def reached(self, valid_until: datetime) -> bool:
        end = valid_until + self.grace if self.allow_grace else valid_until
        return end >= self.goal

    def receive_only(self, valid_until: datetime, day: date) -> int:
        """Days (up to and including `day`) on which the line may be in grace."""
        return max(0, (day - local_date(valid_until, self.tz)).days + 1)

    def run(self, valid_until: datetime) -> Schedule:
        if self.reached(valid_until):
            tail = self.receive_only(valid_until, self.until) if self.allow_grace else 0
            return Schedule(True, receive_only_days=tail)
        if not self.plans or not self.segments:
            return Schedule(False, problem="no_plans")
        start: _State = (valid_until, 0, tuple(0 for _ in self.limited))
        best: dict[_State, tuple[_Cost, _State | None, Any]] = {start: ((0, 0, 0, 0), None, None)}
        fronts: dict[tuple[int, tuple[int, ...]], _Front] = {}
        heap: list[_State] = [start]
        done: set[_State] = set()
        goal: tuple[_Cost, _State] | None = None
        moments: dict[date, datetime] = {}
        dates: dict[datetime, date] = {}

        def dominated(state: _State, cost: _Cost) -> bool:
            # A state with at least this validity, no later segment, the same
            # promotion uses and no higher cost does everything this one does.
            return any(
                fronts[key].dominates(state[0], cost)
                for key in ((seg, state[2]) for seg in range(state[1] + 1))
                if key in fronts
            )

        def overtaken(state: _State, cost: _Cost) -> bool:
            # Found later: a state that does everything this one does.
            for seg in range(state[1] + 1):
                front = fronts.get((seg, state[2]))
                if front is not None and front.beats(state[0], cost, same=seg == state[1]):
                    return True
            return False

        while heap:
            state = heapq.heappop(heap)
            if state in done:
                continue
            done.add(state)
            cost = best[state][0]
            current, first_segment, used = state
            if goal is not None and cost >= goal[0]:
                continue
            if state is not start and overtaken(state, cost):
                continue
            if state is not start and self.reached(current):
                tail = self.receive_only(current, self.until) if self.allow_grace else 0
                total = (cost[0], cost[1] + tail, cost[2], cost[3])
                if goal is None or total < goal[0]:
                    goal = (total, state)
                continue
            current_day = dates.get(current)
            if current_day is None:
                current_day = dates[current] = local_date(current, self.tz)
            strict_day = current_day - _DAY
            latest = (
                local_date(current + self.grace, self.tz) - _DAY if self.allow_grace else strict_day
            )
            if state is start:
                strict_day, latest = max(strict_day, self.today), max(latest, self.today)
            for index in range(first_segment, len(self.segments)):
                segment = self.segments[index]
                if segment.first > latest:
                    break
                days = {min(latest, segment.last)}
                if self.allow_grace and strict_day >= segment.first:
                    days.add(min(strict_day, segment.last))
                offers = self.offers(segment, used)
                for day in days:
                    at = moments.get(day)
                    if at is None:
                        at = moments[day] = moment(day, self.today, self.now, self.tz)
                    ro = max(0, (day - current_day).days + 1)
                    # Stocking up on a segment's last day only pays for plans
                    # the next segment sells worse (see the module docstring).
                    later: dict[int, _Terms] = {}
                    if day == segment.last and day + _DAY <= strict_day:
                        later = self.terms_by_plan(self.segments[index + 1], used)
                    for plan_index, terms in offers:
                        following = later.get(plan_index)
                        if (
                            following is not None
                            and following.price <= terms.price
                            and following.days >= terms.days
                            and following.uses == terms.uses
                        ):
                            continue
                        extension = lifecycle.extend_validity(self.policy, current, at, terms.days)
                        after = extension.valid_until
                        if after <= current or extension.days_added < 1:
                            # Adds no whole day: quote() would call it "0 days"
                            # (and refuse it without credit); never planned.
                            continue
                        new_state: _State = (after, index, terms.uses)
                        new_cost = (
                            cost[0] + terms.price,
                            cost[1] + ro,
                            cost[2] + 1,
                            cost[3] + (self.until - day).days,
                        )
                        known = best.get(new_state)
                        if known is not None and known[0] <= new_cost:
                            continue
                        if dominated(new_state, new_cost):
                            continue
                        front = fronts.setdefault((index, terms.uses), _Front())
                        front.add(after, new_cost)
                        best[new_state] = (new_cost, state, (day, at, plan_index, terms, ro))
                        heapq.heappush(heap, new_state)
        if goal is None:
            return Schedule(False, problem="unreachable")
        steps: list[Step] = []
        cursor: _State | None = goal[1]
        while cursor is not None:
            _cost, parent, move = best[cursor]
            if move is not None and parent is not None:
                day, at, plan_index, terms, ro = move
                plan = self.plans[plan_index]
                steps.append(
                    Step(
                        on=day,
                        at=at,
                        plan_code=plan.code,
                        plan_name=plan.name,
                        list_price=terms.list_price,
                        price=terms.price,
                        days=terms.days,
                        promotion_code=terms.promotion_code,
                        valid_until_before=parent[0],
                        valid_until_after=cursor[0],
                        receive_only_days=ro,
                        days_added=lifecycle.days_added(parent[0], cursor[0], at),
                    )
                )
            cursor = parent
        steps.reverse()
        return Schedule(True, tuple(steps), goal[0][0], goal[0][1])


def cheapest_schedule(
    *,
    policy: PolicyLike,
    valid_until: datetime,
    now: datetime,
    until: date,
    plans: Sequence[PlanOption],
    promotions: Sequence[PromotionOption] = (),
    allow_grace: bool = False,
    tz: tzinfo,
) -> Schedule:
    """The cheapest top-ups (plans bought on days from today up to `until`)
    that keep a line whose validity ends at `valid_until` active (or, with
    `allow_grace`, at worst in grace) through the whole local day `until`.

    If the line is no longer safe today, the first step is today, now."""
    return _Planner(
        policy=policy,
        now=now,
        until=until,
        plans=plans,
        promotions=promotions,
        allow_grace=allow_grace,
        tz=tz,
    ).run(valid_until)
