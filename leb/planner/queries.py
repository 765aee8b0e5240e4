"""The keep plan of a line: loads the line's policy, plans and guaranteed
promotions and asks the pure planner (planning.py) for the cheapest schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q
from django.utils.translation import gettext as _

from leb.catalog.models import Channel, Plan, Promotion, RedemptionState
from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus

from . import planning

# Automatic top-ups use this channel; plans not sold there are bought on the web.
CHANNELS = (Channel.AUTO, Channel.WEB)
# The furthest target date the planner accepts.
MAX_YEARS = 30


@dataclass(frozen=True)
class PlannedTopUp:
    on: date  # the day to top up (local date, LEB_TIME_ZONE)
    plan_code: str
    plan_name: str  # in the active language
    price: int  # minor units actually paid (after guaranteed promotions)
    currency: str
    valid_until_after: date
    # The channel the plan is bought on ("auto", else "web").
    channel: str = Channel.AUTO
    # Exact validity after the step when topped up at `at`.
    at: datetime | None = None
    valid_until_after_at: datetime | None = None
    # Days before this step on which the line may be receive-only (allow_grace).
    receive_only_days: int = 0
    promotion_code: str = ""
    # The plan's validity days (with guaranteed bonus days) and the days the
    # step really adds: fewer under the validity cap or the reset rule.
    days: int = 0
    days_added: int = 0

    @property
    def adds_fewer_days(self) -> bool:
        return self.days_added < self.days


@dataclass(frozen=True)
class KeepPlan:
    line_id: int
    until: date
    allow_grace: bool
    steps: list[PlannedTopUp]
    total: int
    currency: str
    feasible: bool
    reason: str  # translated text when not feasible
    # Days up to `until` on which the line may be receive-only (grace).
    receive_only_days: int = 0


def time_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _channel_for(plan: Plan) -> str | None:
    for channel in CHANNELS:
        if channel in (plan.channels or []):
            return str(channel)
    return None


def plan_options(line: Line, now: datetime) -> tuple[list[planning.PlanOption], dict[str, str]]:
    """Plans for the line's currency sold on auto (or web) and not off sale
    for good; with the channel each one is bought on."""
    options, channels = [], {}
    plans = Plan.objects.filter(currency=line.currency, is_active=True).filter(
        Q(active_until__isnull=True) | Q(active_until__gt=now)
    )
    for plan in plans.order_by("sort_order", "price", "code"):
        channel = _channel_for(plan)
        if channel is None:
            continue
        channels[plan.code] = channel
        options.append(
            planning.PlanOption(
                code=plan.code,
                name=plan.display_name(),
                price=plan.price,
                credit=plan.credit,
                validity_days=plan.validity_days,
                on_sale_from=plan.active_from,
                on_sale_until=plan.active_until,
                channel=channel,
            )
        )
    return options, channels


def promotion_options(line: Line, now: datetime) -> list[planning.PromotionOption]:
    """Automatic promotions for the line's currency that are running or will
    run and apply on the channel used; code promotions never count."""
    promotions = (
        Promotion.objects.filter(
            promo_code="", is_active=True, currency=line.currency, ends_at__gt=now
        )
        .prefetch_related("plans")
        .annotate(
            used_by_line=Count(
                "redemptions",
                filter=Q(
                    redemptions__line=line,
                    redemptions__state__in=[RedemptionState.RESERVED, RedemptionState.USED],
                ),
            )
        )
        .order_by("pk")
    )
    options = []
    for promo in promotions:
        uses_left = None
        if promo.per_line_limit is not None:
            uses_left = max(0, promo.per_line_limit - promo.used_by_line)
            if uses_left == 0:
                continue
        options.append(
            planning.PromotionOption(
                code=promo.code,
                starts_at=promo.starts_at,
                ends_at=promo.ends_at,
                discount_percent=promo.discount_percent,
                discount_fixed=promo.discount_fixed,
                bonus_credit_percent=promo.bonus_credit_percent,
                bonus_credit_fixed=promo.bonus_credit_fixed,
                bonus_days=promo.bonus_days,
                plan_codes=frozenset(p.code for p in promo.plans.all()),
                channels=frozenset(promo.channels or []),
                has_budget=promo.budget is not None,
                uses_left=uses_left,
            )
        )
    return options


def default_target(now: datetime) -> date:
    """Three years from today (28 February for a 29 February)."""
    today = planning.local_date(now, time_zone())
    try:
        return today.replace(year=today.year + 3)
    except ValueError:
        return today.replace(year=today.year + 3, day=28)


def target_problem(until: date, now: datetime) -> tuple[str, str] | None:
    """(code, translated message) when a target date cannot be planned for."""
    today = planning.local_date(now, time_zone())
    if until < today:
        return "until_past", _("Choose a date from today on; this date is in the past.")
    try:
        furthest = today.replace(year=today.year + MAX_YEARS)
    except ValueError:
        furthest = today.replace(year=today.year + MAX_YEARS, day=28)
    if until > furthest:
        return "until_too_far", _("Choose a date at most %(years)d years from today.") % {
            "years": MAX_YEARS
        }
    return None


def _infeasible(line: Line, until: date, allow_grace: bool, reason: str) -> KeepPlan:
    return KeepPlan(
        line_id=line.pk,
        until=until,
        allow_grace=allow_grace,
        steps=[],
        total=0,
        currency=line.currency,
        feasible=False,
        reason=reason,
    )


def keep_plan(line: Line, until: date, *, now: datetime, allow_grace: bool = False) -> KeepPlan:
    """The cheapest schedule of top-ups that keeps `line` active (with
    allow_grace: never losing its number, possibly in grace) through `until`."""
    status = lifecycle.effective_status(line, now)
    if status == LineStatus.TERMINATED:
        return _infeasible(
            line, until, allow_grace, _("This line has been terminated and can no longer be kept.")
        )
    if status == LineStatus.INVENTORY or line.valid_until is None:
        return _infeasible(line, until, allow_grace, _("This line is not activated yet."))
    problem = target_problem(until, now)
    if problem is not None:
        return _infeasible(line, until, allow_grace, problem[1])
    plans, channels = plan_options(line, now)
    tz = time_zone()
    schedule = planning.cheapest_schedule(
        policy=line.policy,
        valid_until=line.valid_until,
        now=now,
        until=until,
        plans=plans,
        promotions=promotion_options(line, now) if plans else [],
        allow_grace=allow_grace,
        tz=tz,
    )
    if not schedule.feasible:
        if schedule.problem == "no_plans":
            reason = _("No plan for this line is on sale for automatic or online top-ups.")
        else:
            reason = _(
                "The plans on sale cannot keep this line until that date: "
                "some of them stop being sold too early."
            )
        return _infeasible(line, until, allow_grace, reason)
    steps = [
        PlannedTopUp(
            on=step.on,
            plan_code=step.plan_code,
            plan_name=step.plan_name,
            price=step.price,
            currency=line.currency,
            valid_until_after=planning.local_date(step.valid_until_after, tz),
            channel=channels[step.plan_code],
            at=step.at,
            valid_until_after_at=step.valid_until_after,
            receive_only_days=step.receive_only_days,
            promotion_code=step.promotion_code,
            days=step.days,
            days_added=step.days_added,
        )
        for step in schedule.steps
    ]
    return KeepPlan(
        line_id=line.pk,
        until=until,
        allow_grace=allow_grace,
        steps=steps,
        total=schedule.total,
        currency=line.currency,
        feasible=True,
        reason="",
        receive_only_days=schedule.receive_only_days,
    )
