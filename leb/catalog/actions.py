"""Writes to promotion budgets. Budgets hold under concurrency because each
reservation is one conditional UPDATE: it succeeds only while budget remains."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from leb.lines.models import Line

from .models import Promotion, PromotionRedemption, RedemptionState
from .quotes import QuoteError


def reserve_promotion(
    promotion_id: int, line: Line, order_ref: str, cost: int, now: datetime
) -> PromotionRedemption:
    """Hold `cost` of the promotion's budget for an order. The caller holds the
    line's lock, which makes the per-line limit count exact."""
    promo = Promotion.objects.get(pk=promotion_id)
    if promo.per_line_limit is not None:
        used = PromotionRedemption.objects.filter(
            promotion_id=promotion_id,
            line=line,
            state__in=[RedemptionState.RESERVED, RedemptionState.USED],
        ).count()
        if used >= promo.per_line_limit:
            raise QuoteError(
                _("This line has already used this promotion the maximum number of times."),
                code="promo_line_limit",
            )
    if promo.budget is not None and cost:
        won = Promotion.objects.filter(
            Q(budget_used__lte=F("budget") - cost), pk=promotion_id
        ).update(budget_used=F("budget_used") + cost)
        if not won:
            raise QuoteError(
                _("This promotion has ended: its budget is used up."), code="promo_budget"
            )
    return PromotionRedemption.objects.create(
        promotion_id=promotion_id,
        line=line,
        order_ref=order_ref,
        cost=cost,
        state=RedemptionState.RESERVED,
        created_at=now,
    )


def use_promotion(order_ref: str) -> None:
    PromotionRedemption.objects.filter(order_ref=order_ref, state=RedemptionState.RESERVED).update(
        state=RedemptionState.USED
    )


def release_promotion(order_ref: str, *, include_used: bool = False) -> None:
    """Give the budget back: the order expired, failed or was cancelled, or
    (include_used) its top-up was refunded."""
    states = (
        [RedemptionState.RESERVED, RedemptionState.USED]
        if include_used
        else [RedemptionState.RESERVED]
    )
    redemption = (
        PromotionRedemption.objects.select_for_update()
        .filter(order_ref=order_ref, state__in=states)
        .select_related("promotion")
        .first()
    )
    if redemption is None:
        return
    redemption.state = RedemptionState.RELEASED
    redemption.save(update_fields=["state"])
    if redemption.promotion.budget is not None and redemption.cost:
        Promotion.objects.filter(pk=redemption.promotion_id).update(
            budget_used=F("budget_used") - redemption.cost
        )


def reclaim_promotion(order_ref: str) -> None:
    """A payment arrived for an order that had expired and released its
    promotion. The subscriber paid for what they were shown, so the cost is
    charged to the budget again even if that overruns it (bounded by late
    payments, and visible as budget_used > budget)."""
    redemption = (
        PromotionRedemption.objects.select_for_update()
        .filter(order_ref=order_ref, state=RedemptionState.RELEASED)
        .select_related("promotion")
        .first()
    )
    if redemption is None:
        return
    redemption.state = RedemptionState.RESERVED
    redemption.save(update_fields=["state"])
    if redemption.promotion.budget is not None and redemption.cost:
        Promotion.objects.filter(pk=redemption.promotion_id).update(
            budget_used=F("budget_used") + redemption.cost
        )
