"""Promotion display data: which plans a promotion really applies to, what
it gives on each, and whether checkout would still apply it.

Banners, announcements and the home page describe a promotion only from
this, so they cannot promise what checkout does not give: the bonus and
discount come from the same arithmetic as the quote, and a promotion that
checkout would refuse (ended, switched off, budget used up) counts as ended."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, Sum

from .models import Plan, Promotion, PromotionBudgetSlice, with_budget_used

__all__ = ["attach_budget_used", "with_budget_used"]
from .quotes import _promotion_value


class PromotionState:
    UPCOMING = "upcoming"
    RUNNING = "running"
    ENDED = "ended"


def _on_sale(plan: Plan, now: datetime) -> bool:
    return (
        plan.is_active
        and (plan.active_from is None or plan.active_from <= now)
        and (plan.active_until is None or now < plan.active_until)
    )


@dataclass(frozen=True)
class PromotionView:
    promotion: Promotion
    # The plans on sale now that checkout applies the promotion to, cheapest first.
    plans: tuple[Plan, ...]
    now: datetime

    # --- state ----------------------------------------------------------------

    def cost(self, plan: Plan) -> int:
        discount, bonus = _promotion_value(self.promotion, plan.price, plan.credit)
        return discount + bonus

    @property
    def budget_exhausted(self) -> bool:
        promo = self.promotion
        if promo.budget is None:
            return False
        left = promo.budget - promo.budget_used
        if not self.plans:
            return left <= 0
        # Checkout refuses an order whose bonus and discount exceed what is left.
        return left < min(self.cost(plan) for plan in self.plans)

    def state_at(self, now: datetime) -> str:
        promo = self.promotion
        if not promo.is_active or now >= promo.ends_at or self.budget_exhausted:
            return PromotionState.ENDED
        if not self.plans and not promo.applies_to_free_amount:
            return PromotionState.ENDED
        if now < promo.starts_at:
            return PromotionState.UPCOMING
        return PromotionState.RUNNING

    @property
    def state(self) -> str:
        return self.state_at(self.now)

    @property
    def is_running(self) -> bool:
        return self.state == PromotionState.RUNNING

    @property
    def has_ended(self) -> bool:
        return self.state == PromotionState.ENDED

    def gains(self, plan: Plan) -> tuple[int, int, int]:
        """(discount, bonus credit, bonus days) on `plan`: what its quote gives."""
        discount, bonus = _promotion_value(self.promotion, plan.price, plan.credit)
        return discount, bonus, self.promotion.bonus_days


def attach_budget_used(promotions: Iterable[Promotion]) -> None:
    """Read the budget use of the budgeted promotions that do not know it yet
    (loaded without `with_budget_used()`), in one query for all of them."""
    missing = {
        p.pk: p
        for p in promotions
        if p.pk is not None and p.budget is not None and "budget_used_total" not in p.__dict__
    }
    if not missing:
        return
    totals = dict(
        PromotionBudgetSlice.objects.filter(promotion_id__in=missing)
        .order_by()
        .values("promotion_id")
        .annotate(total=Sum("used"))
        .values_list("promotion_id", "total")
    )
    for pk, promo in missing.items():
        promo.budget_used_total = totals.get(pk) or 0  # type: ignore[attr-defined]


def _applicable_plans(promo: Promotion, plans: list[Plan], now: datetime) -> tuple[Plan, ...]:
    chosen = {p.pk for p in promo.plans.all()}
    found = []
    for plan in plans:
        if plan.currency != promo.currency or not _on_sale(plan, now):
            continue
        if chosen and plan.pk not in chosen:
            continue
        if promo.channels and not set(promo.channels) & set(plan.channels or []):
            continue
        discount, _bonus = _promotion_value(promo, plan.price, plan.credit)
        if discount >= plan.price:
            # Checkout refuses a promotion that would make the top-up free.
            continue
        found.append(plan)
    return tuple(sorted(found, key=lambda p: (p.price, p.sort_order, p.pk)))


def promotion_views(promotions: list[Promotion], now: datetime) -> list[PromotionView]:
    """Views of several promotions: their plans in one query (prefetch the
    promotions' own plan lists to keep it at that)."""
    attach_budget_used(promotions)
    currencies = {p.currency for p in promotions}
    plans = list(Plan.objects.filter(currency__in=currencies)) if currencies else []
    return [PromotionView(p, _applicable_plans(p, plans, now), now) for p in promotions]


def promotion_view(promo: Promotion, now: datetime) -> PromotionView:
    return promotion_views([promo], now)[0]


def current_promotions(now: datetime) -> list[PromotionView]:
    """Running promotions, soonest ending first (three queries in all)."""
    promotions = list(
        with_budget_used(
            Promotion.objects.filter(is_active=True, starts_at__lte=now, ends_at__gt=now).filter(
                Q(budget__isnull=True) | Q(budget__gt=0)
            )
        )
        .prefetch_related("plans")
        .order_by("ends_at", "pk")
    )
    return [view for view in promotion_views(promotions, now) if view.is_running]
