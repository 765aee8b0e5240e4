"""Pricing: what a top-up costs and gives, frozen into a Quote."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus

from .models import (
    FreeAmountRule,
    Plan,
    Promotion,
    PromotionRedemption,
    RedemptionState,
    with_budget_used,
)


class QuoteError(ValidationError):
    """Why a top-up cannot be priced; the message is for the subscriber."""


@dataclass(frozen=True)
class Quote:
    line_id: int
    channel: str
    currency: str
    plan_code: str
    list_price: int
    discount: int
    price: int
    credit: int
    bonus_credit: int
    restore_fee: int
    plan_days: int
    bonus_days: int
    promotion_id: int | None
    promotion_code: str
    promotion_cost: int
    status_before: str
    current_valid_until: datetime | None
    new_valid_until: datetime
    uncapped_valid_until: datetime
    capped: bool
    quoted_at: datetime
    expires_at: datetime

    @property
    def validity_days(self) -> int:
        return self.plan_days + self.bonus_days

    @property
    def credit_to_wallet(self) -> int:
        """What the wallet gains: credit and bonus, less any restore fee."""
        return self.credit + self.bonus_credit - self.restore_fee

    @property
    def days_lost_to_cap(self) -> int:
        return max(0, (self.uncapped_valid_until - self.new_valid_until).days)

    @property
    def days_added(self) -> int:
        """The days this top-up really adds (fewer than `validity_days` when
        the cap or the reset rule takes some): what every channel says."""
        return lifecycle.days_added(self.current_valid_until, self.new_valid_until, self.quoted_at)

    @property
    def adds_fewer_days(self) -> bool:
        """The subscriber gets fewer days than the plan's nominal days."""
        return self.days_added < self.validity_days

    @property
    def is_credit_only(self) -> bool:
        return self.validity_days == 0

    @property
    def fewer_days_because(self) -> str:
        """Why the top-up adds fewer days than the plan: "cap" (the line's
        validity cap), "reset" (days count from the top-up, not from the end
        of the current validity) or "" when it adds them all."""
        if not self.adds_fewer_days:
            return ""
        return "cap" if self.capped else "reset"

    @property
    def is_free_amount(self) -> bool:
        return not self.plan_code

    def breakdown(self) -> list[tuple[str, int]]:
        """(key, minor units) rows for receipts and confirm pages."""
        rows = [("list_price", self.list_price)]
        if self.discount:
            rows.append(("discount", -self.discount))
        rows += [("price", self.price), ("credit", self.credit)]
        if self.bonus_credit:
            rows.append(("bonus_credit", self.bonus_credit))
        if self.restore_fee:
            rows.append(("restore_fee", -self.restore_fee))
        return rows

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Quote:
        values = dict(data)
        for f in dataclasses.fields(cls):
            if f.name.endswith(("_at", "valid_until")) and values.get(f.name):
                values[f.name] = parse_datetime(values[f.name])
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})


# The rows of Quote.breakdown(), for receipts, the API and the back office.
BREAKDOWN_LABELS = {
    "list_price": _("List price"),
    "discount": _("Discount"),
    "price": _("Price paid"),
    "credit": _("Credit"),
    "bonus_credit": _("Bonus credit"),
    "restore_fee": _("Restore fee"),
}


def breakdown_label(key: str) -> str:
    return str(BREAKDOWN_LABELS.get(key, key))


def days_added_sentence(
    frozen: Quote, *, date: str, cap_days: int | None, done: bool = False
) -> str:
    """The plain-words sentence every text channel shows beside "Pay" (and,
    with `done`, after the top-up): the days really added and the resulting
    valid-until `date` (already formatted for the reader), and why it is
    fewer than the plan's days when it is.

    "This top-up adds 12 days, not 180: your number will be valid until
    3 June 2027 (the most this line allows is 365 days from today)."
    """
    added, days = frozen.days_added, frozen.validity_days
    if frozen.fewer_days_because == "cap" and cap_days:
        why = gettext("the most this line allows is %(max)d days from today") % {"max": cap_days}
    else:
        why = gettext("on this line the days count from today, not from the end of its validity")
    values = {"added": added, "days": days, "date": date, "why": why}
    if not frozen.adds_fewer_days:
        if days == 0:
            text = (
                gettext("This top-up added credit only: the number stays valid until %(date)s.")
                if done
                else gettext(
                    "This top-up adds credit only: your number stays valid until %(date)s."
                )
            )
        elif done:
            text = ngettext(
                "This top-up added %(added)d day: the number is now valid until %(date)s.",
                "This top-up added %(added)d days: the number is now valid until %(date)s.",
                added,
            )
        else:
            text = ngettext(
                "This top-up adds %(added)d day: your number will be valid until %(date)s.",
                "This top-up adds %(added)d days: your number will be valid until %(date)s.",
                added,
            )
    elif added == 0:
        text = (
            gettext(
                "This top-up added no days, only credit: the number stays valid until "
                "%(date)s (%(why)s)."
            )
            if done
            else gettext(
                "This top-up adds no days, only credit: your number stays valid until "
                "%(date)s (%(why)s)."
            )
        )
    elif done:
        text = ngettext(
            "This top-up added %(added)d day, not %(days)d: the number is now valid until "
            "%(date)s (%(why)s).",
            "This top-up added %(added)d days, not %(days)d: the number is now valid until "
            "%(date)s (%(why)s).",
            added,
        )
    else:
        text = ngettext(
            "This top-up adds %(added)d day, not %(days)d: your number will be valid until "
            "%(date)s (%(why)s).",
            "This top-up adds %(added)d days, not %(days)d: your number will be valid until "
            "%(date)s (%(why)s).",
            added,
        )
    return text % values


ADDS_NOTHING = _(
    "This top-up would add no days: the line is already valid until the most "
    "this plan allows, and it gives no credit. Choose a plan with credit or "
    "top up later."
)


def _percent(amount: int, percent: int) -> int:
    return amount * percent // 100


def _promotion_value(promo: Promotion, price: int, credit: int) -> tuple[int, int]:
    """(discount, bonus credit) the promotion gives on this price and credit."""
    discount = min(price, _percent(price, promo.discount_percent) + promo.discount_fixed)
    bonus = _percent(credit, promo.bonus_credit_percent) + promo.bonus_credit_fixed
    return discount, bonus


def _promotion_problem(
    promo: Promotion,
    line: Line,
    plan: Plan | None,
    channel: str,
    now: datetime,
    price: int,
    credit: int,
) -> str | None:
    """None when the promotion applies; else the reason, for the subscriber."""
    if not promo.is_active or not promo.starts_at <= now < promo.ends_at:
        return str(_("This promotion is not running now."))
    if promo.currency != line.currency:
        return str(_("This promotion is not available for this line's currency."))
    if promo.channels and channel not in promo.channels:
        return str(_("This promotion is not available on this channel."))
    if plan is None and not promo.applies_to_free_amount:
        return str(_("This promotion applies to plans only, not to free amounts."))
    if plan is not None:
        plan_ids = [p.pk for p in promo.plans.all()]
        if plan_ids and plan.pk not in plan_ids:
            return str(_("This promotion does not apply to this plan."))
    discount, bonus = _promotion_value(promo, price, credit)
    if discount >= price:
        return str(_("This promotion cannot make a top-up free."))
    if promo.budget is not None and promo.budget - promo.budget_used < discount + bonus:
        return str(_("This promotion has ended: its budget is used up."))
    if promo.per_line_limit is not None:
        used = PromotionRedemption.objects.filter(
            promotion=promo, line=line, state__in=[RedemptionState.RESERVED, RedemptionState.USED]
        ).count()
        if used >= promo.per_line_limit:
            return str(_("This line has already used this promotion the maximum number of times."))
    return None


def _check_line(line: Line, now: datetime) -> str:
    status = lifecycle.effective_status(line, now)
    if status == LineStatus.TERMINATED:
        raise QuoteError(
            _("This line has been terminated and can no longer be topped up."),
            code="line_terminated",
        )
    if status == LineStatus.INVENTORY:
        raise QuoteError(_("This line is not activated yet."), code="line_inventory")
    return status


def _plan_terms(plan: Plan, line: Line, channel: str, now: datetime) -> tuple[int, int, int]:
    on_sale = (
        plan.is_active
        and (plan.active_from is None or plan.active_from <= now)
        and (plan.active_until is None or now < plan.active_until)
    )
    if not on_sale:
        raise QuoteError(_("This plan is not on sale."), code="plan_inactive")
    if plan.currency != line.currency:
        raise QuoteError(
            _("This plan is priced in %(plan)s but the line uses %(line)s."),
            code="plan_currency",
            params={"plan": plan.currency, "line": line.currency},
        )
    if channel not in plan.channels:
        raise QuoteError(_("This plan is not sold on this channel."), code="plan_channel")
    return plan.price, plan.credit, plan.validity_days


def _amount_terms(amount: int, line: Line, channel: str) -> tuple[int, int, int]:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise QuoteError(_("Enter an amount greater than zero."), code="amount_not_positive")
    rule = FreeAmountRule.objects.filter(currency=line.currency, is_active=True).first()
    if rule is None or channel not in rule.channels:
        raise QuoteError(
            _("Top-ups of a free amount are not available for this line."),
            code="amount_unavailable",
        )
    if not rule.min_amount <= amount <= rule.max_amount:
        raise QuoteError(
            _("The amount must be between %(min)s and %(max)s (minor units of %(currency)s)."),
            code="amount_range",
            params={"min": rule.min_amount, "max": rule.max_amount, "currency": line.currency},
        )
    return amount, amount, rule.validity_days_for(amount)


def find_plan(code: str) -> Plan:
    plan = Plan.objects.filter(code=code).first()
    if plan is None:
        raise QuoteError(
            _("There is no plan %(code)s."), code="plan_unknown", params={"code": code}
        )
    return plan


def quote(
    line: Line,
    plan_or_amount: Plan | int,
    channel: str,
    promo_code: str = "",
    now: datetime | None = None,
) -> Quote:
    """Price a top-up of `line` by a plan or a free amount (minor units) on
    `channel`. Applies the promo code when given (an invalid one is an error),
    otherwise the best automatic promotion. Reads only; writes nothing."""
    from leb.common import clock

    now = now or clock.now()
    status = _check_line(line, now)
    plan = plan_or_amount if isinstance(plan_or_amount, Plan) else None
    if plan is not None:
        list_price, credit, days = _plan_terms(plan, line, channel, now)
    else:
        list_price, credit, days = _amount_terms(plan_or_amount, line, channel)  # type: ignore[arg-type]

    promo: Promotion | None = None
    promo_code = (promo_code or "").strip()
    if promo_code:
        promo = with_budget_used(Promotion.objects.filter(promo_code__iexact=promo_code)).first()
        if promo is None:
            raise QuoteError(_("This promo code is not valid."), code="promo_unknown")
        problem = _promotion_problem(promo, line, plan, channel, now, list_price, credit)
        if problem:
            raise QuoteError(problem, code="promo_not_applicable")
    else:
        candidates = with_budget_used(
            Promotion.objects.filter(
                Q(promo_code=""),
                is_active=True,
                currency=line.currency,
                starts_at__lte=now,
                ends_at__gt=now,
            )
        ).prefetch_related("plans")
        best_value = -1
        for candidate in candidates:
            if _promotion_problem(candidate, line, plan, channel, now, list_price, credit) is None:
                value = sum(_promotion_value(candidate, list_price, credit))
                if value > best_value or (
                    value == best_value and promo and candidate.bonus_days > promo.bonus_days
                ):
                    promo, best_value = candidate, value

    discount, bonus = _promotion_value(promo, list_price, credit) if promo else (0, 0)
    bonus_days = promo.bonus_days if promo else 0
    restore_fee = 0
    if status == LineStatus.SUSPENDED and line.policy.restore_fee:
        restore_fee = min(line.policy.restore_fee, credit + bonus)
    extension = lifecycle.extend_validity(line.policy, line.valid_until, now, days + bonus_days)
    if days + bonus_days > 0 and extension.days_added == 0 and credit + bonus - restore_fee <= 0:
        # Money for nothing: the cap (or the reset rule) takes every day and
        # the plan gives no credit. Refused on every channel before payment.
        raise QuoteError(ADDS_NOTHING, code="adds_nothing")
    return Quote(
        line_id=line.pk,
        channel=channel,
        currency=line.currency,
        plan_code=plan.code if plan else "",
        list_price=list_price,
        discount=discount,
        price=list_price - discount,
        credit=credit,
        bonus_credit=bonus,
        restore_fee=restore_fee,
        plan_days=days,
        bonus_days=bonus_days,
        promotion_id=promo.pk if promo else None,
        promotion_code=promo.code if promo else "",
        promotion_cost=discount + bonus,
        status_before=str(status),
        current_valid_until=line.valid_until,
        new_valid_until=extension.valid_until,
        uncapped_valid_until=extension.uncapped_valid_until,
        capped=extension.capped,
        quoted_at=now,
        expires_at=now + timedelta(minutes=settings.QUOTE_TTL_MINUTES),
    )
