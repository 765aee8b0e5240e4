"""Every write to the catalog: promotion budgets (each reservation is one
conditional UPDATE of one of the budget's slices, so budgets hold under
concurrency without a single hot row) and the back
office's edits of plans, free-amount rules and promotions (each one
transaction with its audit entry)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model, ProtectedError, RestrictedError
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.admin import validate_currency
from leb.common.transactions import one_transaction
from leb.lines.models import Line

from . import budgets
from .models import (
    Channel,
    FreeAmountRule,
    Plan,
    Promotion,
    PromotionRedemption,
    RedemptionState,
)
from .quotes import QuoteError


def reserve_promotion(
    promotion_id: int, line: Line, order_ref: str, cost: int, now: datetime
) -> PromotionRedemption:
    """Hold `cost` of the promotion's budget for an order. The caller holds the
    line's lock, which makes the per-line limit count exact. The cost is taken
    from one of the budget's slices (leb.catalog.budgets), so top-ups on
    different lines do not wait for each other."""
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
    slot = None
    if promo.budget is not None and cost:
        try:
            slot = budgets.take(promotion_id, cost, preferred=line.pk)
        except budgets.BudgetShort:
            raise QuoteError(
                _("This promotion has ended: its budget is used up."), code="promo_budget"
            ) from None
    return PromotionRedemption.objects.create(
        promotion_id=promotion_id,
        line=line,
        order_ref=order_ref,
        cost=cost,
        state=RedemptionState.RESERVED,
        slot=slot,
        created_at=now,
    )


def use_promotion(order_ref: str) -> None:
    PromotionRedemption.objects.filter(order_ref=order_ref, state=RedemptionState.RESERVED).update(
        state=RedemptionState.USED
    )


def release_promotion(order_ref: str, *, include_used: bool = False) -> None:
    """Give the budget back: the order expired, failed or was cancelled, or
    (include_used) its top-up was refunded. The cost goes back to the slice
    it was taken from."""
    states = (
        [RedemptionState.RESERVED, RedemptionState.USED]
        if include_used
        else [RedemptionState.RESERVED]
    )
    redemption = (
        PromotionRedemption.objects.select_for_update()
        .filter(order_ref=order_ref, state__in=states)
        .first()
    )
    if redemption is None:
        return
    redemption.state = RedemptionState.RELEASED
    redemption.save(update_fields=["state"])
    if redemption.slot is not None and redemption.cost:
        budgets.give_back(redemption.promotion_id, redemption.slot, redemption.cost)


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
    redemption.slot = None
    if redemption.promotion.budget is not None and redemption.cost:
        redemption.slot = budgets.take(
            redemption.promotion_id, redemption.cost, preferred=redemption.line_id, force=True
        )
    redemption.save(update_fields=["state", "slot"])


# --- Catalog edits (the back office's plan, free-amount and promotion pages) -----

PLAN_FIELDS = (
    "code",
    "name_en",
    "name_zh_hans",
    "name_zh_hant",
    "currency",
    "price",
    "credit",
    "validity_days",
    "channels",
    "is_active",
    "active_from",
    "active_until",
    "sort_order",
)
FREE_AMOUNT_FIELDS = ("currency", "min_amount", "max_amount", "tiers", "channels", "is_active")
PROMOTION_FIELDS = (
    "code",
    "promo_code",
    "name_en",
    "name_zh_hans",
    "name_zh_hant",
    "currency",
    "bonus_credit_percent",
    "bonus_credit_fixed",
    "bonus_days",
    "discount_percent",
    "discount_fixed",
    "channels",
    "applies_to_free_amount",
    "starts_at",
    "ends_at",
    "per_line_limit",
    "budget",
    "is_active",
)


class CatalogError(ValidationError):
    """A refused catalog edit; messages are keyed by field where one is at fault."""


def _assign(instance: Model, fields: Mapping[str, Any], allowed: tuple[str, ...]) -> list[str]:
    """Set the given fields on the instance; the names of those that changed."""
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValueError(f"not editable here: {', '.join(unknown)}")
    changed = []
    for name, value in fields.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


def _raise(problems: dict[str, list[Any]]) -> None:
    problems = {name: messages for name, messages in problems.items() if messages}
    if problems:
        raise CatalogError(problems)


def _full_clean(instance: Model) -> None:
    """The model's own checks (types, lengths, uniqueness) as a CatalogError."""
    try:
        instance.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise CatalogError(exc.message_dict) from exc


def _check_channels(value: Any, *, allow_empty: bool) -> list[Any]:
    if not isinstance(value, list) or not all(c in Channel.values for c in value):
        return [_("Choose channels from the list.")]
    if not value and not allow_empty:
        return [_("Choose at least one channel.")]
    return []


def _check_currency(instance: Any) -> list[Any]:
    try:
        instance.currency = validate_currency(instance.currency)
    except ValidationError as exc:
        return list(exc.messages)
    return []


def check_plan(plan: Plan) -> None:
    """Everything a plan must satisfy before it is saved (CatalogError otherwise)."""
    problems: dict[str, list[Any]] = {
        "currency": _check_currency(plan),
        "channels": _check_channels(plan.channels, allow_empty=False),
        "price": [] if (plan.price or 0) > 0 else [_("The price must be more than zero.")],
    }
    if plan.active_from and plan.active_until and plan.active_until <= plan.active_from:
        problems["active_until"] = [_("The sale must end after it starts.")]
    _raise(problems)
    _full_clean(plan)


def _audit_change(
    actor: str,
    action: AuditAction,
    target: str,
    before: Mapping[str, Any],
    instance: Model,
    changed: list[str],
    now: datetime,
    **extra: Any,
) -> None:
    record(
        actor,
        action,
        target,
        {
            "fields": changed,
            "before": {name: before[name] for name in changed},
            "after": {name: getattr(instance, name) for name in changed},
            **extra,
        },
        now=now,
    )


def _snapshot(instance: Model, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in names}


@one_transaction
def do_create_plan(fields: Mapping[str, Any], *, actor: str, now: datetime | None = None) -> Plan:
    """A new plan, checked and audited."""
    now = now or clock.now()
    plan = Plan()
    _assign(plan, fields, PLAN_FIELDS)
    check_plan(plan)
    plan.save()
    record(actor, AuditAction.PLAN_ADD, f"plan:{plan.pk}", {"fields": sorted(fields)}, now=now)
    return plan


@one_transaction
def do_update_plan(
    plan: Plan, changes: Mapping[str, Any], *, actor: str, now: datetime | None = None
) -> Plan:
    """Change a plan's fields. Orders already created keep the quote they
    were sold on; only new quotes see the change."""
    now = now or clock.now()
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    before = _snapshot(plan, PLAN_FIELDS)
    changed = _assign(plan, changes, PLAN_FIELDS)
    if not changed:
        return plan
    check_plan(plan)
    plan.save(update_fields=changed)
    _audit_change(actor, AuditAction.PLAN_CHANGE, f"plan:{plan.pk}", before, plan, changed, now)
    return plan


@dataclass(frozen=True)
class RetiredPlan:
    plan: Plan
    # True when the plan was never sold or referenced and its row was removed.
    deleted: bool


@one_transaction
def do_retire_plan(plan: Plan, *, actor: str, now: datetime | None = None) -> RetiredPlan:
    """Take a plan off sale. A plan that orders (or vouchers, auto-keep rules)
    point at is kept and only stops selling, so its history stays readable;
    one nothing ever used is removed."""
    now = now or clock.now()
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    target = f"plan:{plan.pk}"
    if not plan.orders.exists():
        try:
            with transaction.atomic():
                Plan.objects.filter(pk=plan.pk).delete()
        except (ProtectedError, RestrictedError):
            pass
        else:
            record(actor, AuditAction.PLAN_DELETE, target, {"code": plan.code}, now=now)
            return RetiredPlan(plan, deleted=True)
    changes: dict[str, Any] = {"is_active": False}
    if plan.active_until is None or plan.active_until > now:
        changes["active_until"] = now
    if plan.active_from is not None and plan.active_from >= changes.get("active_until", now):
        # A sale that had not started yet never starts.
        changes["active_from"] = None
    before = _snapshot(plan, PLAN_FIELDS)
    changed = _assign(plan, changes, PLAN_FIELDS)
    if changed:
        plan.save(update_fields=changed)
    _audit_change(actor, AuditAction.PLAN_RETIRE, target, before, plan, changed, now)
    return RetiredPlan(plan, deleted=False)


def check_tiers(tiers: Any) -> list[list[int]]:
    """[[minimum amount, validity days], ...] sorted, or CatalogError."""
    problem = CatalogError(
        {"tiers": [_("Enter a list of [minimum amount, validity days] pairs of whole numbers.")]}
    )
    if not isinstance(tiers, list):
        raise problem
    for tier in tiers:
        if not (
            isinstance(tier, list)
            and len(tier) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in tier)
        ):
            raise problem
    return sorted(tiers)


def check_free_amount_rule(rule: FreeAmountRule) -> None:
    problems: dict[str, list[Any]] = {
        "currency": _check_currency(rule),
        "channels": _check_channels(rule.channels, allow_empty=False),
    }
    try:
        rule.tiers = check_tiers(rule.tiers)
    except CatalogError as exc:
        problems.update(exc.message_dict)
    if (rule.min_amount or 0) <= 0:
        problems["min_amount"] = [_("The minimum must be more than zero.")]
    elif rule.max_amount is not None and rule.max_amount < rule.min_amount:
        problems["max_amount"] = [_("The maximum must not be below the minimum.")]
    _raise(problems)
    _full_clean(rule)


@one_transaction
def do_create_free_amount_rule(
    fields: Mapping[str, Any], *, actor: str, now: datetime | None = None
) -> FreeAmountRule:
    now = now or clock.now()
    rule = FreeAmountRule()
    _assign(rule, fields, FREE_AMOUNT_FIELDS)
    check_free_amount_rule(rule)
    rule.save()
    record(
        actor,
        AuditAction.FREEAMOUNTRULE_ADD,
        f"freeamountrule:{rule.pk}",
        {"fields": sorted(fields)},
        now=now,
    )
    return rule


@one_transaction
def do_update_free_amount_rule(
    rule: FreeAmountRule, changes: Mapping[str, Any], *, actor: str, now: datetime | None = None
) -> FreeAmountRule:
    now = now or clock.now()
    rule = FreeAmountRule.objects.select_for_update().get(pk=rule.pk)
    before = _snapshot(rule, FREE_AMOUNT_FIELDS)
    changed = _assign(rule, changes, FREE_AMOUNT_FIELDS)
    if not changed:
        return rule
    check_free_amount_rule(rule)
    rule.save(update_fields=changed)
    _audit_change(
        actor,
        AuditAction.FREEAMOUNTRULE_CHANGE,
        f"freeamountrule:{rule.pk}",
        before,
        rule,
        changed,
        now,
    )
    return rule


def check_promotion(promo: Promotion, plans: list[Plan] | None) -> None:
    """Everything a promotion must satisfy; `plans` are the plans it is
    limited to (None: leave them as they are)."""
    promo.promo_code = (promo.promo_code or "").strip().upper()
    problems: dict[str, list[Any]] = {
        "currency": _check_currency(promo),
        "channels": _check_channels(promo.channels, allow_empty=True),
    }
    if promo.starts_at and promo.ends_at and promo.ends_at <= promo.starts_at:
        problems["ends_at"] = [_("The promotion must end after it starts.")]
    if (promo.discount_percent or 0) > 100:
        problems["discount_percent"] = [_("A discount cannot be more than the whole price.")]
    if (promo.bonus_credit_percent or 0) > 1000:
        problems["bonus_credit_percent"] = [
            _("A credit bonus cannot be more than ten times the credit.")
        ]
    if plans and not problems["currency"]:
        wrong = [plan.code for plan in plans if plan.currency != promo.currency]
        if wrong:
            problems["plans"] = [
                _("These plans are not in %(currency)s: %(plans)s")
                % {"currency": promo.currency, "plans": ", ".join(wrong)}
            ]
    _raise(problems)
    _full_clean(promo)


def _plan_codes(plans: list[Plan]) -> list[str]:
    return sorted(plan.code for plan in plans)


@one_transaction
def do_create_promotion(
    fields: Mapping[str, Any],
    *,
    plans: list[Plan] | None = None,
    actor: str,
    now: datetime | None = None,
) -> Promotion:
    """A new promotion (limited to `plans`, none: all plans), checked and audited."""
    now = now or clock.now()
    plans = list(plans or [])
    promo = Promotion()
    _assign(promo, fields, PROMOTION_FIELDS)
    check_promotion(promo, plans)
    promo.save()
    promo.plans.set(plans)
    record(
        actor,
        AuditAction.PROMOTION_ADD,
        f"promotion:{promo.pk}",
        {"fields": sorted(fields), "plans": _plan_codes(plans)},
        now=now,
    )
    return promo


@one_transaction
def do_update_promotion(
    promo: Promotion,
    changes: Mapping[str, Any],
    *,
    plans: list[Plan] | None = None,
    actor: str,
    now: datetime | None = None,
) -> Promotion:
    """Change a promotion. Its budget use is not editable: it moves with
    orders. Orders already quoted keep the promotion they were shown."""
    now = now or clock.now()
    promo = Promotion.objects.select_for_update().get(pk=promo.pk)
    before = _snapshot(promo, PROMOTION_FIELDS)
    changed = _assign(promo, changes, PROMOTION_FIELDS)
    old_plans = list(promo.plans.all())
    new_plans = old_plans if plans is None else list(plans)
    plans_changed = _plan_codes(old_plans) != _plan_codes(new_plans)
    if not changed and not plans_changed:
        return promo
    check_promotion(promo, new_plans)
    if changed:
        promo.save(update_fields=changed)
    extra: dict[str, Any] = {}
    if plans_changed:
        promo.plans.set(new_plans)
        extra = {"plans_before": _plan_codes(old_plans), "plans_after": _plan_codes(new_plans)}
    _audit_change(
        actor,
        AuditAction.PROMOTION_CHANGE,
        f"promotion:{promo.pk}",
        before,
        promo,
        changed,
        now,
        **extra,
    )
    return promo


@one_transaction
def do_end_promotion(promo: Promotion, *, actor: str, now: datetime | None = None) -> Promotion:
    """Stop a promotion now: no new quote gets it. Unpaid orders that were
    quoted with it keep it (their budget stays reserved until they finish)."""
    now = now or clock.now()
    promo = Promotion.objects.select_for_update().get(pk=promo.pk)
    changes: dict[str, Any] = {"is_active": False}
    if promo.starts_at < now < promo.ends_at:
        changes["ends_at"] = now
    before = _snapshot(promo, PROMOTION_FIELDS)
    changed = _assign(promo, changes, PROMOTION_FIELDS)
    if not changed:
        return promo
    promo.save(update_fields=changed)
    _audit_change(
        actor, AuditAction.PROMOTION_END, f"promotion:{promo.pk}", before, promo, changed, now
    )
    return promo
