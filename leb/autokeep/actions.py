"""Every write of the auto-keep app: saved payment methods, rules, and the
periodic job that charges a saved method before a line runs out.

Public entry points (keyword arguments, `now` optional everywhere):

- ``do_save_sandbox_method(user, card_number, exp_month, exp_year, now=None)``
- ``do_start_method_setup(*, user, provider, next_url="", now=None) -> (MethodSetup, url)``
- ``do_finish_method_setup(setup, now=None) -> MethodSetup``
- ``do_remove_method(*, user, method, now=None)``
- ``do_set_rule(*, user, line, mode, method, plan=None, days_before=None, until=None,
  allow_grace=False, now=None) -> AutoKeepRule`` creates or replaces the line's rule
- ``do_rule_from_plan(*, user, line, until, allow_grace, now=None) -> AutoKeepRule``
- ``do_pause_rule`` / ``do_resume_rule`` ``(*, user, rule, now=None)``
- ``do_charge_saved_method(*, line, plan, channel, idempotency_key, now=None, method=None)``
- ``do_run_autokeep(now=None) -> RunResult`` (the periodic job)

A successful automatic top-up is announced by the receipt every fulfilled
order sends (``topup_succeeded``); this app only adds the messages that the
receipt cannot give: ``autokeep_failed``, ``autokeep_gave_up`` and
``card_expiring``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from stdnum import luhn

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.catalog.models import Plan
from leb.catalog.quotes import QuoteError, quote
from leb.common import clock
from leb.common.transactions import one_transaction, outside_transaction, own_transactions
from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus
from leb.payments.actions import (
    absolute_url,
    do_charge_off_session,
    failure_message,
    unconfirmed_charges,
)
from leb.payments.providers import sandbox
from leb.payments.providers.base import (
    PaymentProviderError,
    SavedCard,
    get_provider,
)
from leb.topups.actions import do_create_order, do_fulfil_order
from leb.topups.models import OrderStatus, TopUpOrder

from .models import (
    AutoKeepRule,
    AutoKeepRun,
    MethodSetup,
    MethodStatus,
    RuleMode,
    RunStatus,
    SavedPaymentMethod,
    SetupStatus,
    card_expires_on,
)
from .queries import is_usable, saved_method_for_line

logger = logging.getLogger(__name__)

# A run that is still "started" this long after it began was interrupted: the
# next job resumes it with the same idempotency key.
STALE_RUN = timedelta(minutes=15)
# How long to wait when an order for the line is already in flight.
PENDING_ORDER_WAIT = timedelta(minutes=30)
RECHECK = timedelta(days=1)

PAUSE_REASONS = {
    "by_user": _("Paused by you."),
    "method_removed": _("The saved card was removed."),
    "card_expired": _("The saved card has expired."),
    "line_not_owned": _("The line is no longer in your account."),
    "line_terminated": _("The line has been terminated."),
    "finished": _("The end date of this rule has passed."),
}


OWN_REASONS = {
    "adds_nothing": _(
        "Skipped, nothing was charged: the top-up would add no days, because the line is "
        "already valid until the most it allows. Auto-keep checks again every day."
    ),
    "no_method": _("No usable saved card for this line. Save a card or top up by hand."),
    "plan_inactive": _("The chosen plan is no longer on sale. Choose another plan."),
    "declined": _("The payment did not go through."),
}


def reason_text(code: str) -> str:
    """Why a charge failed or a rule is paused, in the active language."""
    if code in PAUSE_REASONS:
        return str(PAUSE_REASONS[code])
    if code in OWN_REASONS:
        return str(OWN_REASONS[code])
    return failure_message(code)


def reason_in_english(code: str) -> str:
    """What the run row keeps: the reason in English (pages translate the code)."""
    with translation.override("en"):
        return reason_text(code)[:255]


class AutoKeepError(ValidationError):
    """A refused auto-keep operation; `.code` says why, the message is for the
    person who asked."""


@dataclass
class RunResult:
    checked: int = 0
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    gave_up: int = 0
    paused: int = 0
    # Due, but not charged: the top-up would have added no days.
    skipped: int = 0
    warned: int = 0
    errors: int = 0


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def max_attempts() -> int:
    return max(1, _setting("AUTOKEEP_MAX_ATTEMPTS", 3))


def retry_delay() -> timedelta:
    return timedelta(hours=max(1, _setting("AUTOKEEP_RETRY_HOURS", 24)))


def max_days_before() -> int:
    return max(1, _setting("AUTOKEEP_MAX_DAYS_BEFORE", 60))


def horizon_days() -> int:
    return max(1, _setting("AUTOKEEP_HORIZON_DAYS", 365))


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _notify(**kwargs: Any) -> None:
    from leb.notifications.actions import notify

    notify(**kwargs)


def _overview_url() -> str:
    return absolute_url(reverse("autokeep:overview"))


# --- Saved payment methods ------------------------------------------------------


def _expiry_warn_at(exp_month: int, exp_year: int) -> datetime:
    last_day = card_expires_on(exp_month, exp_year)
    days = _setting("AUTOKEEP_CARD_WARNING_DAYS", 30)
    return _local_midnight(last_day + timedelta(days=1)) - timedelta(days=days)


def _check_expiry(exp_month: int, exp_year: int, now: datetime) -> None:
    if not 1 <= exp_month <= 12 or not 2000 <= exp_year <= 2100:
        raise AutoKeepError(_("Enter a valid expiry month and year."), code="invalid_expiry")
    if card_expires_on(exp_month, exp_year) < timezone.localdate(now):
        raise AutoKeepError(_("This card has expired."), code="expired_card")


@own_transactions
def do_save_method(
    *, user: Any, provider: str, card: SavedCard, now: datetime | None = None
) -> SavedPaymentMethod:
    """Keep what a provider returned after tokenising a card. Saving the same
    provider method twice returns the first row."""
    now = now or clock.now()
    _check_expiry(card.exp_month, card.exp_year, now)
    if not card.method_reference or not card.last4:
        raise AutoKeepError(_("The provider did not return a usable card."), code="invalid_card")
    with transaction.atomic():
        method, created = SavedPaymentMethod.objects.get_or_create(
            provider=provider,
            method_reference=card.method_reference,
            defaults={
                "user": user,
                "customer_reference": card.customer_reference,
                "brand": card.brand[:30],
                "last4": card.last4[-4:],
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "created_at": now,
                "expiry_warn_at": _expiry_warn_at(card.exp_month, card.exp_year),
            },
        )
        if method.user_id != user.pk:
            raise AutoKeepError(
                _("The provider did not return a usable card."), code="invalid_card"
            )
        if created:
            record(
                f"user:{user.get_username()}",
                AuditAction.PAYMENT_METHOD_SAVE,
                f"payment_method:{method.pk}",
                {
                    "user": user.pk,
                    "provider": provider,
                    "brand": method.brand,
                    "last4": method.last4,
                    "exp": f"{method.exp_month:02d}/{method.exp_year}",
                },
                now=now,
            )
    return method


def _customer_reference(user: Any, provider: str) -> str:
    existing = (
        SavedPaymentMethod.objects.filter(user=user, provider=provider)
        .exclude(customer_reference="")
        .order_by("-created_at")
        .values_list("customer_reference", flat=True)
        .first()
    )
    if existing:
        return str(existing)
    return f"sbxcus_{user.pk}" if provider == "sandbox" else ""


@own_transactions
def do_save_sandbox_method(
    user: Any,
    card_number: str,
    exp_month: int,
    exp_year: int,
    now: datetime | None = None,
) -> SavedPaymentMethod:
    """The sandbox's tokenising path without a browser: the card number is
    checked, reduced to a token by the sandbox gateway and forgotten."""
    now = now or clock.now()
    number = re.sub(r"[\s-]", "", card_number or "")
    if not number.isdigit() or not 12 <= len(number) <= 19 or not luhn.is_valid(number):
        raise AutoKeepError(_("Enter a valid card number."), code="invalid_number")
    if exp_year < 100:
        exp_year += 2000
    _check_expiry(exp_month, exp_year, now)
    try:
        card = sandbox.vault_card(
            number,
            exp_month,
            exp_year,
            customer_reference=_customer_reference(user, "sandbox"),
        )
    except PaymentProviderError as exc:
        raise AutoKeepError(exc.message, code=exc.code) from exc
    return do_save_method(user=user, provider="sandbox", card=card, now=now)


@outside_transaction
def do_start_method_setup(
    *, user: Any, provider: str, next_url: str = "", now: datetime | None = None
) -> tuple[MethodSetup, str]:
    """Open the provider's hosted "save a card" page; returns the setup and
    where to send the browser."""
    now = now or clock.now()
    try:
        gateway = get_provider(provider)
    except LookupError as exc:
        raise AutoKeepError(
            _("This payment method is not available."), code="provider_unknown"
        ) from exc
    if not gateway.can_save_methods:
        raise AutoKeepError(
            _("This payment method cannot be saved for later."), code="not_supported"
        )
    setup = MethodSetup.objects.create(
        user=user, provider=provider, next_url=next_url[:300], created_at=now
    )
    return_url = absolute_url(reverse("autokeep:setup_return", args=[setup.public_id]))
    try:
        started = gateway.start_setup(
            setup_id=str(setup.public_id),
            customer_reference=_customer_reference(user, provider),
            email=str(getattr(user, "email", "") or ""),
            return_url=return_url,
            cancel_url=return_url + "?cancelled=1",
        )
    except PaymentProviderError as exc:
        logger.warning("%s card setup %s failed: %s", provider, setup.pk, exc)
        setup.status = SetupStatus.FAILED
        setup.failure_message = str(exc)[:255]
        setup.finished_at = now
        setup.save(update_fields=["status", "failure_message", "finished_at"])
        raise AutoKeepError(
            failure_message("provider_unavailable"), code="provider_unavailable"
        ) from exc
    setup.provider_reference = started.reference[:255]
    setup.save(update_fields=["provider_reference"])
    return setup, started.redirect_url


@outside_transaction
def do_finish_method_setup(
    setup: MethodSetup, *, cancelled: bool = False, now: datetime | None = None
) -> MethodSetup:
    """Ask the provider how the hosted page ended and save the card. Calling
    it again (reload, back button) changes nothing."""
    now = now or clock.now()
    if setup.status != SetupStatus.PENDING:
        return setup
    card: SavedCard | None = None
    error: AutoKeepError | None = None
    try:
        card = get_provider(setup.provider).finish_setup(setup.provider_reference)
    except (LookupError, PaymentProviderError) as exc:
        logger.warning("card setup %s could not be finished: %s", setup.pk, exc)
        error = AutoKeepError(failure_message("provider_unavailable"), code="provider_error")
    with transaction.atomic():
        setup = MethodSetup.objects.select_for_update().get(pk=setup.pk)
        if setup.status != SetupStatus.PENDING:
            return setup
        if card is not None:
            try:
                setup.method = do_save_method(
                    user=setup.user, provider=setup.provider, card=card, now=now
                )
                setup.status = SetupStatus.COMPLETED
            except AutoKeepError as exc:
                error = exc
        if error is not None or (card is None and cancelled):
            setup.status = SetupStatus.FAILED
            setup.failure_message = (
                str(error.messages[0]) if error else str(_("Saving the card was cancelled."))
            )[:255]
        if setup.status != SetupStatus.PENDING:
            setup.finished_at = now
            setup.save(update_fields=["status", "method", "failure_message", "finished_at"])
    return setup


@outside_transaction
def do_remove_method(
    *, user: Any, method: SavedPaymentMethod, now: datetime | None = None
) -> SavedPaymentMethod:
    """Forget a saved card. Rules that used it are paused (and say why)."""
    now = now or clock.now()
    if method.user_id != user.pk:
        raise AutoKeepError(_("There is no such saved card."), code="not_found")
    with transaction.atomic():
        method = SavedPaymentMethod.objects.select_for_update().get(pk=method.pk)
        if method.status == MethodStatus.REMOVED:
            return method
        method.status = MethodStatus.REMOVED
        method.removed_at = now
        method.save(update_fields=["status", "removed_at"])
        AutoKeepRule.objects.filter(method=method, paused=False).update(
            paused=True, paused_reason="method_removed", updated_at=now
        )
        record(
            f"user:{user.get_username()}",
            AuditAction.PAYMENT_METHOD_REMOVE,
            f"payment_method:{method.pk}",
            {"user": user.pk, "provider": method.provider, "last4": method.last4},
            now=now,
        )
    try:
        get_provider(method.provider).detach_saved(
            customer_reference=method.customer_reference,
            method_reference=method.method_reference,
        )
    except (LookupError, PaymentProviderError) as exc:
        logger.warning("detaching method %s at %s failed: %s", method.pk, method.provider, exc)
    return method


# --- Rules ----------------------------------------------------------------------


def plans_for_line(line: Line, now: datetime | None = None) -> list[Plan]:
    """The plans an auto-keep rule may buy for this line: on sale now, in the
    line's currency, sold on the automatic channel."""
    now = now or clock.now()
    plans = Plan.objects.filter(currency=line.currency, is_active=True).order_by(
        "sort_order", "price", "code"
    )
    return [
        plan
        for plan in plans
        if "auto" in (plan.channels or [])
        and (plan.active_from is None or plan.active_from <= now)
        and (plan.active_until is None or now < plan.active_until)
    ]


def _check_line(user: Any, line: Line, now: datetime) -> None:
    if line.owner_id is None or line.owner_id != user.pk:
        raise AutoKeepError(_("There is no such line in your account."), code="line_not_found")
    status = lifecycle.effective_status(line, now)
    if status == LineStatus.TERMINATED:
        raise AutoKeepError(
            _("This line has been terminated and can no longer be topped up."),
            code="line_terminated",
        )
    if status == LineStatus.INVENTORY:
        raise AutoKeepError(_("This line is not activated yet."), code="line_inventory")


def _check_method(user: Any, method: SavedPaymentMethod | None, now: datetime) -> None:
    if method is None or method.user_id != user.pk or not method.is_active:
        raise AutoKeepError(
            _("Add a card first: auto-keep needs a saved payment method."), code="no_method"
        )
    if not is_usable(method, now):
        raise AutoKeepError(_("This card has expired. Save a new card."), code="card_expired")


def _check_until(until: date | None, now: datetime) -> None:
    if until is None:
        return
    today = timezone.localdate(now)
    if until <= today:
        raise AutoKeepError(_("The end date must be in the future."), code="until_past")
    if until > today + timedelta(days=5 * 366):
        raise AutoKeepError(
            _("The end date can be at most five years from today."), code="until_too_far"
        )


@own_transactions
def do_set_rule(
    *,
    user: Any,
    line: Line,
    mode: str,
    method: SavedPaymentMethod | None,
    plan: Plan | None = None,
    days_before: int | None = None,
    until: date | None = None,
    allow_grace: bool = False,
    now: datetime | None = None,
) -> AutoKeepRule:
    """Create or replace the auto-keep rule of one of the user's lines.

    mode "threshold": top up `plan` when at most `days_before` days are left
    (1..LEB_AUTOKEEP_MAX_DAYS_BEFORE). mode "cheapest": follow the planner's
    cheapest schedule until `until` (default: a year ahead, rolling). Either
    stops after `until`. The rule is checked at the next job run."""
    now = now or clock.now()
    _check_line(user, line, now)
    _check_method(user, method, now)
    _check_until(until, now)
    if mode == RuleMode.THRESHOLD:
        if plan is None:
            raise AutoKeepError(_("Choose a plan to top up."), code="plan_required")
        if plan.currency != line.currency:
            raise AutoKeepError(
                _("This plan is priced in %(plan)s but the line uses %(line)s."),
                code="plan_currency",
                params={"plan": plan.currency, "line": line.currency},
            )
        if plan not in plans_for_line(line, now):
            raise AutoKeepError(
                _("This plan is not on sale for automatic top-ups."), code="plan_unavailable"
            )
        top = max_days_before()
        if days_before is None or isinstance(days_before, bool) or not 1 <= int(days_before) <= top:
            raise AutoKeepError(
                _("Choose between 1 and %(max)s days."),
                code="days_out_of_range",
                params={"max": top},
            )
    elif mode == RuleMode.CHEAPEST:
        plan, days_before = None, None
    else:
        raise AutoKeepError(_("Choose how auto-keep should work."), code="mode_invalid")
    with transaction.atomic():
        rule = AutoKeepRule.objects.select_for_update().filter(line=line).first()
        if rule is None:
            rule = AutoKeepRule(line=line, created_at=now)
        rule.user = user
        rule.method = method  # type: ignore[assignment]
        rule.mode = mode
        rule.plan = plan
        rule.days_before = days_before
        rule.until = until
        rule.allow_grace = bool(allow_grace)
        rule.paused = False
        rule.paused_reason = ""
        rule.attempts = 0
        rule.next_check_at = now
        rule.updated_at = now
        rule.save()
    return rule


def parse_until(raw: str) -> date:
    """A YYYY-MM-DD end date, or AutoKeepError."""
    try:
        return date.fromisoformat((raw or "").strip())
    except ValueError as exc:
        raise AutoKeepError(_("Enter the end date as YYYY-MM-DD."), code="until_invalid") from exc


@own_transactions
def do_rule_from_plan(
    *,
    user: Any,
    line: Line,
    until: date,
    allow_grace: bool = False,
    now: datetime | None = None,
) -> AutoKeepRule:
    """Turn the planner's cheapest schedule into a "keep my number at the
    lowest cost" rule, charged to the line owner's saved card."""
    now = now or clock.now()
    _check_line(user, line, now)
    if until is None:
        raise AutoKeepError(_("Enter the end date as YYYY-MM-DD."), code="until_invalid")
    _check_until(until, now)
    return do_set_rule(
        user=user,
        line=line,
        mode=RuleMode.CHEAPEST,
        method=saved_method_for_line(line, now),
        until=until,
        allow_grace=allow_grace,
        now=now,
    )


def _rule_for(user: Any, rule: AutoKeepRule) -> AutoKeepRule:
    locked = AutoKeepRule.objects.select_for_update().filter(pk=rule.pk, user=user).first()
    if locked is None:
        raise AutoKeepError(_("There is no such rule."), code="not_found")
    return locked


@one_transaction
def do_pause_rule(*, user: Any, rule: AutoKeepRule, now: datetime | None = None) -> AutoKeepRule:
    now = now or clock.now()
    rule = _rule_for(user, rule)
    if not rule.paused:
        rule.paused = True
        rule.paused_reason = "by_user"
        rule.updated_at = now
        rule.save(update_fields=["paused", "paused_reason", "updated_at"])
    return rule


@one_transaction
def do_resume_rule(*, user: Any, rule: AutoKeepRule, now: datetime | None = None) -> AutoKeepRule:
    now = now or clock.now()
    rule = _rule_for(user, rule)
    line = Line.objects.get(pk=rule.line_id)
    _check_line(user, line, now)
    method = SavedPaymentMethod.objects.get(pk=rule.method_id)
    _check_method(user, method, now)
    if rule.paused:
        rule.paused = False
        rule.paused_reason = ""
        rule.attempts = 0
        rule.next_check_at = now
        rule.updated_at = now
        rule.save(
            update_fields=["paused", "paused_reason", "attempts", "next_check_at", "updated_at"]
        )
    return rule


# --- Off-session charges --------------------------------------------------------


@outside_transaction
def do_charge_saved_method(
    *,
    line: Line,
    plan: Plan,
    channel: str,
    idempotency_key: str,
    now: datetime | None = None,
    method: SavedPaymentMethod | None = None,
) -> TopUpOrder:
    """Buy `plan` for `line` on `channel`, paid with the owner's saved card
    while they are not present: order → payment attempt → off-session charge →
    settle() → fulfilment, the same path as every other payment. The same
    idempotency key returns the same order and never charges twice. Returns
    the order, fulfilled or failed with its reason."""
    now = now or clock.now()
    if method is None:
        method = saved_method_for_line(line, now)
    if (
        method is None
        or line.owner_id is None
        or method.user_id != line.owner_id
        or not is_usable(method, now)
    ):
        raise AutoKeepError(
            _("No usable saved card for this line. Save a card or top up by hand."),
            code="no_method",
        )
    try:
        provider = get_provider(method.provider)
    except LookupError as exc:
        raise AutoKeepError(
            _("This payment method is not available."), code="provider_unknown"
        ) from exc
    order = do_create_order(
        line=line,
        channel=channel,
        plan=plan,
        customer=line.owner,
        actor=f"saved_method:{method.pk}",
        idempotency_key=f"saved:{idempotency_key}"[:200],
        now=now,
    )
    if order.status == OrderStatus.PAID:
        return do_fulfil_order(order, now=now)
    if order.status != OrderStatus.PENDING_PAYMENT:
        return order
    do_charge_off_session(
        order,
        provider_name=provider.name,
        saved_method_id=method.pk,
        customer_reference=method.customer_reference,
        method_reference=method.method_reference,
        now=now,
    )
    order.refresh_from_db()
    if order.status == OrderStatus.PAID:
        order = do_fulfil_order(order, now=now)
    return order


# --- The periodic job -------------------------------------------------------------


def _attempt_failure(order: TopUpOrder) -> tuple[str, str]:
    attempt = order.payment_attempts.order_by("-created_at", "-id").first()
    code = attempt.failure_code if attempt and attempt.failure_code else "declined"
    with translation.override("en"):
        message = failure_message(code, order.failure_reason)
    return code, message[:255]


def _pending_order(line: Line, now: datetime) -> bool:
    return (
        TopUpOrder.objects.filter(line=line)
        .filter(
            status__in=(OrderStatus.PENDING_PAYMENT, OrderStatus.PAID),
        )
        .exclude(status=OrderStatus.PENDING_PAYMENT, expires_at__lte=now)
        .exists()
    )


def _pause(rule: AutoKeepRule, reason: str, now: datetime, result: RunResult) -> None:
    rule.paused = True
    rule.paused_reason = reason
    rule.updated_at = now
    rule.save(update_fields=["paused", "paused_reason", "updated_at"])
    result.paused += 1
    if reason == "card_expired":
        _notify(
            kind="autokeep_failed",
            context={
                "reason_code": "card_expired",
                "attempt": 0,
                "max_attempts": max_attempts(),
                "will_retry": False,
                "fix_url": _overview_url(),
            },
            dedupe_key=f"autokeep:{rule.pk}:paused:{rule.method_id}",
            user=rule.user,
            line=rule.line,
            now=now,
        )


@dataclass(frozen=True)
class _Due:
    at: datetime | None  # when the rule becomes due; None: not planned (check later)
    plan: Plan | None = None


def _due(rule: AutoKeepRule, line: Line, now: datetime) -> _Due:
    assert line.valid_until is not None
    if rule.mode == RuleMode.THRESHOLD:
        return _Due(line.valid_until - timedelta(days=rule.days_before or 0), rule.plan)
    from leb.planner.queries import keep_plan

    today = timezone.localdate(now)
    until = rule.until or today + timedelta(days=horizon_days())
    plan = keep_plan(line, until, now=now, allow_grace=rule.allow_grace)
    if not plan.steps:
        return _Due(None)
    step = plan.steps[0]
    if step.on > today:
        return _Due(_local_midnight(step.on))
    return _Due(now, Plan.objects.filter(code=step.plan_code).first())


@dataclass(frozen=True)
class _Claim:
    run_id: int
    idempotency_key: str


def _claim(rule_id: int, now: datetime, result: RunResult) -> _Claim | None:
    """Decide what the rule needs and, if a charge, claim it by inserting its
    run row. Short transaction, no network I/O."""
    with transaction.atomic():
        rule = (
            AutoKeepRule.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=rule_id, paused=False, next_check_at__lte=now)
            .select_related("line", "line__policy", "method", "plan", "user")
            .first()
        )
        if rule is None:
            return None  # another worker has it, or it is no longer due
        result.checked += 1
        line = rule.line
        status = lifecycle.effective_status(line, now)
        if line.owner_id != rule.user_id:
            _pause(rule, "line_not_owned", now, result)
            return None
        if status == LineStatus.TERMINATED:
            _pause(rule, "line_terminated", now, result)
            return None
        if not rule.method.is_active:
            _pause(rule, "method_removed", now, result)
            return None
        if not is_usable(rule.method, now):
            _pause(rule, "card_expired", now, result)
            return None
        if rule.until is not None and timezone.localdate(now) > rule.until:
            _pause(rule, "finished", now, result)
            return None
        if status == LineStatus.INVENTORY or line.valid_until is None:
            return _later(rule, now + RECHECK, now)
        period = line.valid_until
        last = rule.runs.filter(period=period).order_by("-attempt").first()
        if last is not None and last.status == RunStatus.STARTED:
            if last.created_at > now - STALE_RUN:
                return _later(rule, last.created_at + STALE_RUN, now)
            _later(rule, now + STALE_RUN, now)
            return _Claim(last.pk, _run_key(rule, last))
        if last is not None and last.status == RunStatus.SUCCEEDED:
            # Paid for this period, yet validity did not move (e.g. the cap).
            return _later(rule, now + RECHECK, now)
        numbered = last.attempt if last is not None else 0
        # Failures since the user last set or resumed the rule (a new card
        # starts a fresh budget), within this period only; a skip is none.
        failed = rule.attempts if last is not None and last.status == RunStatus.FAILED else 0
        if failed >= max_attempts():
            # Given up for this period; a new period (a top-up by hand) or a
            # rule set again (e.g. with a new card) wakes it.
            return _later(rule, now + RECHECK, now)
        due = _due(rule, line, now)
        if due.at is None or (due.plan is None and due.at <= now):
            return _later(rule, now + RECHECK, now)
        if due.at > now:
            return _later(rule, due.at, now)
        if (
            failed
            and last is not None
            and last.finished_at
            and last.finished_at + retry_delay() > now
        ):
            return _later(rule, last.finished_at + retry_delay(), now)
        if _pending_order(line, now):
            return _later(rule, now + PENDING_ORDER_WAIT, now)
        if due.plan is not None and _adds_nothing(line, due.plan, now):
            _skip(rule, period, last, due.plan, now, result)
            return None
        try:
            with transaction.atomic():
                run = AutoKeepRun.objects.create(
                    rule=rule,
                    period=period,
                    attempt=numbered + 1,
                    plan_code=due.plan.code if due.plan else "",
                    created_at=now,
                )
        except IntegrityError:
            return _later(rule, now + STALE_RUN, now)  # claimed by another worker
        # Not picked again while the charge is in flight.
        _later(rule, now + STALE_RUN, now)
        result.started += 1
        return _Claim(run.pk, _run_key(rule, run))


def _adds_nothing(line: Line, plan: Plan, now: datetime) -> bool:
    """Whether topping up `plan` now would add no days: refused outright (no
    credit either), or credit only. Auto-keep is there to keep the number, so
    it never charges for such a top-up. Other refusals are left to the charge,
    which records them as failures."""
    try:
        frozen = quote(line, plan, "auto", now=now)
    except QuoteError as exc:
        return exc.code == "adds_nothing"
    return frozen.validity_days > 0 and frozen.days_added == 0


def _skip(
    rule: AutoKeepRule,
    period: datetime,
    last: AutoKeepRun | None,
    plan: Plan,
    now: datetime,
    result: RunResult,
) -> None:
    """Record (once per period) that the due top-up was not charged because it
    would add no days, and look again tomorrow: the cap moves with the days."""
    if last is None or last.status != RunStatus.SKIPPED:
        with transaction.atomic():
            AutoKeepRun.objects.create(
                rule=rule,
                period=period,
                attempt=(last.attempt if last is not None else 0) + 1,
                plan_code=plan.code,
                status=RunStatus.SKIPPED,
                error_code="adds_nothing",
                error=reason_in_english("adds_nothing"),
                created_at=now,
                finished_at=now,
            )
    result.skipped += 1
    _later(rule, now + RECHECK, now)


def _run_key(rule: AutoKeepRule, run: AutoKeepRun) -> str:
    return f"autokeep:{rule.pk}:{run.period.isoformat()}:{run.attempt}"


def _later(rule: AutoKeepRule, at: datetime, now: datetime) -> _Claim | None:
    """Check the rule again at `at`; nothing to charge now."""
    rule.next_check_at = at
    rule.updated_at = now
    rule.save(update_fields=["next_check_at", "updated_at"])
    return None


def _execute(claim: _Claim, now: datetime, result: RunResult) -> None:
    run = AutoKeepRun.objects.select_related("rule", "rule__line", "rule__method").get(
        pk=claim.run_id
    )
    rule = run.rule
    plan = Plan.objects.filter(code=run.plan_code).first()
    order: TopUpOrder | None = None
    code, message = "", ""
    try:
        if plan is None:
            raise AutoKeepError(_("This plan is not on sale."), code="plan_inactive")
        order = do_charge_saved_method(
            line=rule.line,
            plan=plan,
            channel="auto",
            idempotency_key=claim.idempotency_key,
            now=now,
            method=rule.method,
        )
    except ValidationError as exc:
        code = str(getattr(exc, "code", "") or "refused")
        with translation.override("en"):
            message = str(exc.messages[0])[:255]
    if order is not None and order.status == OrderStatus.PENDING_PAYMENT:
        # The provider's answer never came: the charge is asked about again
        # (resume_unconfirmed_charges), never made a second time.
        code = "provider_unavailable"
        with translation.override("en"):
            message = failure_message(code)[:255]
    elif order is not None and order.status != OrderStatus.FULFILLED:
        code, message = _attempt_failure(order)
    _finish(run, order, code, message, now, result)


def resume_unconfirmed_charges(now: datetime | None = None) -> int:
    """Ask again about each off-session charge whose answer never came (a
    timeout, a 5xx): the same attempt, so the same idempotency key, so the
    provider answers with what really happened and charges nothing twice. A
    charge that went through is settled and its top-up fulfilled. Returns how
    many were settled."""
    now = now or clock.now()
    settled = 0
    for attempt in unconfirmed_charges(now=now):
        method = SavedPaymentMethod.objects.filter(
            pk=attempt.provider_data.get("saved_method")
        ).first()
        if method is None:
            continue
        try:
            do_charge_off_session(
                attempt.order,
                provider_name=attempt.provider,
                saved_method_id=method.pk,
                customer_reference=method.customer_reference,
                method_reference=method.method_reference,
                now=now,
            )
            order = TopUpOrder.objects.get(pk=attempt.order_id)
            if order.status == OrderStatus.PAID:
                do_fulfil_order(order, now=now)
        except Exception:
            logger.exception("unconfirmed charge of attempt %s could not be resumed", attempt.pk)
            continue
        attempt.refresh_from_db()
        settled += 0 if attempt.is_open else 1
    return settled


def _finish(
    run: AutoKeepRun,
    order: TopUpOrder | None,
    code: str,
    message: str,
    now: datetime,
    result: RunResult,
) -> None:
    with transaction.atomic():
        run = AutoKeepRun.objects.select_for_update().get(pk=run.pk)
        if run.status != RunStatus.STARTED:
            return
        rule = (
            AutoKeepRule.objects.select_for_update()
            .select_related("line", "user")
            .get(pk=run.rule_id)
        )
        run.order = order
        run.finished_at = now
        if not code:
            run.status = RunStatus.SUCCEEDED
            rule.attempts = 0
            rule.next_check_at = now
            result.succeeded += 1
        else:
            run.status = RunStatus.FAILED
            run.error_code = code[:50]
            run.error = message
            # A first attempt in a period starts the count afresh.
            rule.attempts = (rule.attempts if run.attempt > 1 else 0) + 1
            gave_up = rule.attempts >= max_attempts()
            retry_at = now + retry_delay()
            rule.next_check_at = now + RECHECK if gave_up else retry_at
            context: dict[str, Any] = {
                "reason_code": code,
                "attempt": rule.attempts,
                "max_attempts": max_attempts(),
                "will_retry": not gave_up,
                "fix_url": _overview_url(),
                "valid_until": run.period.isoformat(),
            }
            if order is not None:
                context["price_amount"] = order.price
                context["price_currency"] = order.currency
            if not gave_up:
                context["retry_at"] = retry_at.isoformat()
            _notify(
                kind="autokeep_gave_up" if gave_up else "autokeep_failed",
                context=context,
                dedupe_key=f"autokeep:{rule.pk}:{run.period.isoformat()}:{run.attempt}",
                user=rule.user,
                line=rule.line,
                deliver_by=run.period if run.period > now else None,
                # Topped up by hand before the message went out: it is moot.
                skip_if_validity_changed=True,
                now=now,
            )
            if gave_up:
                result.gave_up += 1
            else:
                result.failed += 1
        run.save(update_fields=["order", "finished_at", "status", "error_code", "error"])
        rule.updated_at = now
        rule.save(update_fields=["attempts", "next_check_at", "updated_at"])


def _warn_expiring_cards(now: datetime, batch_size: int, result: RunResult) -> None:
    due = list(
        SavedPaymentMethod.objects.filter(
            status=MethodStatus.ACTIVE, expiry_warned_at__isnull=True, expiry_warn_at__lte=now
        )
        .order_by("expiry_warn_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    for method_id in due:
        with transaction.atomic():
            method = (
                SavedPaymentMethod.objects.select_for_update(skip_locked=True)
                .filter(pk=method_id, expiry_warned_at__isnull=True)
                .select_related("user")
                .first()
            )
            if method is None:
                continue
            method.expiry_warned_at = now
            method.save(update_fields=["expiry_warned_at"])
            _notify(
                kind="card_expiring",
                context={
                    "brand": method.brand,
                    "last4": method.last4,
                    "expires_on": method.expires_on.isoformat(),
                    "rules": method.rules.filter(paused=False).count(),
                    "fix_url": _overview_url(),
                },
                dedupe_key=f"card_expiring:{method.pk}",
                user=method.user,
                now=now,
            )
            result.warned += 1


@outside_transaction
def do_run_autokeep(now: datetime | None = None, *, batch_size: int | None = None) -> RunResult:
    """The periodic job: warn about cards that expire soon, then handle the
    rules that are due (selected by the indexed next_check_at). Safe to run
    again and on several workers at once: each charge is claimed by a unique
    (rule, period, attempt) row first."""
    now = now or clock.now()
    batch_size = batch_size or _setting("AUTOKEEP_BATCH_SIZE", 200)
    result = RunResult()
    # First what the provider never answered: a charge that went through
    # extends the line before any rule is looked at, so it is not bought twice.
    resume_unconfirmed_charges(now)
    _warn_expiring_cards(now, batch_size, result)
    due = list(
        AutoKeepRule.objects.filter(paused=False, next_check_at__lte=now)
        .order_by("next_check_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    for rule_id in due:
        try:
            claim = _claim(rule_id, now, result)
            if claim is not None:
                _execute(claim, now, result)
        except Exception:
            # One broken rule must not stop the others; it is retried next run.
            logger.exception("auto-keep rule %s failed", rule_id)
            result.errors += 1
    return result
