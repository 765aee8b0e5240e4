"""Buying a plan with the line's own balance (USSD, hotline).

The wallet pays the order the way a provider would: the plan's price moves
from the wallet to the payment suspense account under the order's payment
key, then the ordinary fulfilment runs in the same transaction
(`do_pay_and_fulfil`), so the credit,
validity, line history, receipt and notification are exactly those of any
other top-up. The net effect on the books: the wallet pays the plan's price,
regains the plan's credit (if any), and the difference is top-up revenue.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from leb.catalog.models import Plan
from leb.common import clock
from leb.common.transactions import one_transaction
from leb.ledger.actions import InsufficientFunds
from leb.lines import lifecycle
from leb.lines.actions import lock_line, wallet_for
from leb.lines.models import Line, LineStatus

from .actions import do_create_order, do_pay_and_fulfil
from .models import OrderStatus, TopUpOrder

PROVIDER = "balance"


class BalanceRefused(ValidationError):
    """Why a plan cannot be bought from the balance. `code` is one of
    policy_forbids, currency_mismatch, line_terminated, line_inventory,
    balance_short (or a quote/order code such as plan_inactive, plan_channel,
    key_conflict); the message is for the subscriber."""


def _refusal(line: Line, plan: Plan, now: datetime) -> BalanceRefused | None:
    if not line.policy.plans_from_balance:
        return BalanceRefused(
            _("Plans cannot be bought from the balance on this line."), code="policy_forbids"
        )
    if plan.currency != line.currency:
        return BalanceRefused(
            _("This plan is priced in %(plan)s but the line's balance is in %(line)s."),
            code="currency_mismatch",
            params={"plan": plan.currency, "line": line.currency},
        )
    status = lifecycle.effective_status(line, now)
    if status == LineStatus.TERMINATED:
        return BalanceRefused(
            _("This line has been terminated and can no longer be topped up."),
            code="line_terminated",
        )
    if status == LineStatus.INVENTORY:
        return BalanceRefused(_("This line is not activated yet."), code="line_inventory")
    return None


@one_transaction
def do_buy_plan_from_balance(
    *,
    line: Line,
    plan: Plan,
    channel: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> TopUpOrder:
    """Pay `plan` from the line's wallet and fulfil it, in one transaction.

    The same idempotency key returns the first order (nothing is charged
    twice); a refusal raises BalanceRefused and writes nothing."""
    now = now or clock.now()
    locked = lock_line(line.pk)
    replay = TopUpOrder.objects.filter(idempotency_key=idempotency_key).exists()
    if not replay:
        problem = _refusal(locked, plan, now)
        if problem is not None:
            raise problem
    try:
        order = do_create_order(
            line=locked,
            channel=channel,
            plan=plan,
            idempotency_key=idempotency_key,
            actor=f"balance:{channel}",
            now=now,
        )
    except ValidationError as exc:
        raise BalanceRefused(exc.messages[0], code=getattr(exc, "code", None)) from exc
    if order.status != OrderStatus.PENDING_PAYMENT:
        return order  # a replay: the first attempt's outcome
    wallet = wallet_for(locked)
    wallet.refresh_from_db(fields=["balance"])
    if wallet.balance < order.price:
        raise BalanceRefused(
            _("The balance is too low for this plan."),
            code="balance_short",
        )
    try:
        return do_pay_and_fulfil(
            order,
            amount=order.price,
            currency=order.currency,
            provider=PROVIDER,
            reference=idempotency_key[:200],
            paid_from=wallet,
            now=now,
        )
    except InsufficientFunds as exc:
        raise BalanceRefused(
            _("The balance is too low for this plan."), code="balance_short"
        ) from exc
