"""Agent writes: onboarding, status, API keys, deposits, sales and reversals.

The books (see docs/agents.md), for an agent with code C in currency X:

- deposit approved (key `agent-deposit:<id>:approve`):
  debit `clearing:agent-deposits:X` (the bank received it), credit
  `agent_float:C:X` (a liability: what leb owes the agent);
- sale (key `agent:C:<external_id>`): debit the float the wholesale price
  and `agent_commission:C:X` the discount, both credit `clearing:agent:X`;
  then the ordinary order path, `do_pay_and_fulfil` (clearing:agent to
  suspense, the retail price; then suspense to the line's wallet);
- two-step: the wholesale price first moves from the float to
  `agent_reservation:C:X` (key `…:reserve`); confirming reverses that hold
  (`…:release`) and posts the sale as above; expiry only reverses it;
- staff reversal: `do_refund_order`, then the sale group is reversed
  (`…:reversal`), so the float and the commission account are made whole.

Sales of one agent overlap (docs/agents.md, "Concurrency"): each holds the
agent's row FOR SHARE, so a change of the agent waits for them; the unique
(agent, external_id) index makes each external id sell once; the line's lock
makes the repeat window exact; an agent with daily limits has its float row
locked for the whole sale, so its limits are exact; any other agent's float
is debited last, so its hot row is locked for one statement and the commit.
Lock order: agent, the top-up's external id, the float (daily limits only),
line, order, wallet, the float (otherwise).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.catalog.models import Channel, Plan
from leb.catalog.quotes import Quote, QuoteError, quote
from leb.common import clock
from leb.common.transactions import one_transaction, own_transactions
from leb.ledger.actions import (
    InsufficientFunds,
    Leg,
    get_account,
    post_transfers,
    reverse_group,
    system_account,
)
from leb.ledger.models import Account, AccountKind
from leb.lines.identifiers import normalize_msisdn
from leb.lines.models import Line
from leb.lines.queries import live_line_for_number
from leb.notifications.webhooks import check_webhook_url
from leb.topups.actions import (
    OrderError,
    do_cancel_order,
    do_create_order,
    do_pay_and_fulfil,
    do_refund_order,
)
from leb.topups.models import OrderStatus, TopUpOrder

from . import callbacks, signing
from .models import (
    Agent,
    AgentApiKey,
    AgentDeposit,
    AgentMember,
    AgentPlanDiscount,
    AgentStatus,
    AgentTopUp,
    AgentTopUpStatus,
    DepositStatus,
    FailureReason,
    TopUpMode,
)
from .queries import float_code, reservation_code

logger = logging.getLogger(__name__)

PROVIDER = "agent"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone
EXTERNAL_ID_MAX = 64
# Visible ASCII, inner spaces allowed (the rule of /api/v1's Idempotency-Key):
# no control or invisible characters, no lookalikes of another id.
EXTERNAL_ID_RE = re.compile(f"[!-~]([ -~]{{0,{EXTERNAL_ID_MAX - 2}}}[!-~])?")
# A plan's code is a slug (catalog.Plan.code); anything else names no plan.
PLAN_CODE_RE = re.compile(r"[-a-zA-Z0-9_]{1,40}")
# An agent top-up's id (uuid4 hex) and an API key's id (lak_ and 16 hex): any
# other text names none, and is never sent to the database (PostgreSQL refuses
# a NUL in a query).
PUBLIC_ID_RE = re.compile(r"[0-9a-f]{32}")
KEY_ID_RE = re.compile(r"lak_[0-9a-f]{16}")
OPEN = (AgentTopUpStatus.CREATED, AgentTopUpStatus.CONFIRMED, AgentTopUpStatus.COMPLETED)


class AgentError(ValidationError):
    """A refused staff operation (deposits, keys, status); the message is for staff."""


class AgentRefused(ValidationError):
    """A refused agent request that writes nothing. `.status` is the HTTP
    status the API answers with; `.code` the problem code."""

    def __init__(self, message: Any, code: str, status: int = 422, **params: Any) -> None:
        super().__init__(message, code=code, params=params or None)
        self.status = status


class _Declined(Exception):
    """A sale refused for a business reason: kept as a failed agent top-up."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


REASON_TEXT = {
    FailureReason.INSUFFICIENT_FLOAT: _(
        "Your float is too low for this top-up. Make a deposit, then send a new request."
    ),
    FailureReason.LIMIT_REACHED: _("This top-up is over one of your limits."),
    FailureReason.LINE_TERMINATED: _("This line cannot be topped up: it is not in service."),
    FailureReason.PLAN_NOT_ALLOWED: _("You may not sell this plan for this line."),
    FailureReason.RECENTLY_TOPPED_UP: _(
        "You sold the same plan to this number a few minutes ago. Set allow_repeat "
        "if a second top-up is intended."
    ),
    FailureReason.ADDS_NOTHING: _("This top-up would add no days and no credit to this line now."),
}


def reason_text(reason: str) -> str:
    text = REASON_TEXT.get(reason)  # type: ignore[call-overload]
    return str(text) if text is not None else ""


# --- Accounts -------------------------------------------------------------------


def float_account(agent: Agent) -> Account:
    return get_account(
        float_code(agent),
        AccountKind.AGENT_FLOAT,
        agent.currency,
        no_negative=True,
        tracks_balance=True,
    )


def reservation_account(agent: Agent) -> Account:
    return get_account(
        reservation_code(agent),
        AccountKind.AGENT_RESERVATION,
        agent.currency,
        no_negative=True,
        tracks_balance=True,
    )


def commission_account(agent: Agent) -> Account:
    return system_account(AccountKind.AGENT_COMMISSION, agent.currency, agent.code)


def sale_clearing(currency: str) -> Account:
    # The same code do_pay_and_fulfil uses for provider "agent".
    return system_account(AccountKind.CLEARING, currency, PROVIDER)


def deposit_clearing(currency: str) -> Account:
    return system_account(AccountKind.CLEARING, currency, "agent-deposits")


# --- Agents -----------------------------------------------------------------------


def new_agent_code(region: str) -> str:
    prefix = (region or "XX").upper()[:2]
    for _attempt in range(20):
        code = f"{prefix}-" + "".join(secrets.choice(CODE_ALPHABET) for _i in range(6))
        if not Agent.objects.filter(code=code).exists():
            return code
    raise AgentError(_("Could not find a free agent code; try again."), code="code_taken")


@one_transaction
def do_create_agent(*, actor: str, now: datetime | None = None, **fields: Any) -> Agent:
    now = now or clock.now()
    fields["region"] = str(fields.get("region", "")).upper()
    fields["currency"] = str(fields.get("currency", "")).upper()
    agent = Agent(code=new_agent_code(fields["region"]), created_at=now, **fields)
    agent.full_clean()
    agent.save()
    float_account(agent)
    record(
        actor,
        AuditAction.AGENT_CREATE,
        f"agent:{agent.code}",
        {"fields": sorted(fields)},
        now=now,
    )
    return agent


@own_transactions
def do_set_agent_status(
    agent: Agent, status: str, *, actor: str, reason: str = "", now: datetime | None = None
) -> Agent:
    """Suspend, reactivate or terminate. A terminated agent stays terminated."""
    now = now or clock.now()
    if status not in AgentStatus.values:
        raise AgentError(_("Unknown status."), code="status_unknown")
    with transaction.atomic():
        agent = lock_agent(agent.pk)
        if agent.status == status:
            return agent
        if agent.status == AgentStatus.TERMINATED:
            raise AgentError(
                _("A terminated agent cannot be reactivated."), code="agent_terminated"
            )
        before = agent.status
        agent.status = status
        agent.status_changed_at = now
        if status == AgentStatus.SUSPENDED:
            agent.suspended_at = now
        elif status == AgentStatus.TERMINATED:
            agent.terminated_at = now
        agent.save(update_fields=["status", "status_changed_at", "suspended_at", "terminated_at"])
        record(
            actor,
            f"agent.{status}",
            f"agent:{agent.code}",
            {"from": before, "to": status, "reason": reason},
            now=now,
        )
    return agent


# --- API keys ---------------------------------------------------------------------


@dataclass(frozen=True)
class NewKey:
    key: AgentApiKey
    secret: str  # shown once; never stored

    @property
    def callback_secret(self) -> str:
        """What the agent checks callbacks with (derived; see leb.agents.callbacks)."""
        return callbacks.callback_secret(self.key.agent.code)


@one_transaction
def do_create_api_key(
    agent: Agent, *, actor: str, label: str = "", now: datetime | None = None
) -> NewKey:
    now = now or clock.now()
    key = AgentApiKey.objects.create(
        agent=agent,
        key_id=signing.new_key_id(),
        salt=signing.new_salt(),
        label=label[:100],
        created_at=now,
    )
    record(
        actor,
        AuditAction.AGENT_KEY_CREATE,
        f"agent:{agent.code}",
        {"key_id": key.key_id},
        now=now,
    )
    return NewKey(key=key, secret=signing.derive_secret(key.key_id, key.salt))


@own_transactions
def do_rotate_api_key(
    key: AgentApiKey,
    *,
    actor: str,
    overlap: timedelta | None = None,
    now: datetime | None = None,
) -> NewKey:
    """A new key for the same agent; the old one keeps working until the
    overlap ends, so the agent can switch without downtime."""
    now = now or clock.now()
    if overlap is None:
        overlap = timedelta(hours=settings.AGENTS_KEY_OVERLAP_HOURS)
    with transaction.atomic():
        old = AgentApiKey.objects.select_for_update().select_related("agent").get(pk=key.pk)
        if old.revoked_at is not None:
            raise AgentError(_("A revoked key cannot be rotated."), code="key_revoked")
        end = now + overlap
        if old.valid_until is None or old.valid_until > end:
            old.valid_until = end
            old.save(update_fields=["valid_until"])
        new = do_create_api_key(old.agent, actor=actor, label=old.label, now=now)
        record(
            actor,
            AuditAction.AGENT_KEY_ROTATE,
            f"agent:{old.agent.code}",
            {"old": old.key_id, "new": new.key.key_id, "old_valid_until": end},
            now=now,
        )
    return new


@one_transaction
def do_revoke_api_key(key: AgentApiKey, *, actor: str, now: datetime | None = None) -> AgentApiKey:
    now = now or clock.now()
    key = AgentApiKey.objects.select_for_update().select_related("agent").get(pk=key.pk)
    if key.revoked_at is not None:
        return key
    key.revoked_at = now
    key.save(update_fields=["revoked_at"])
    record(
        actor,
        AuditAction.AGENT_KEY_REVOKE,
        f"agent:{key.agent.code}",
        {"key_id": key.key_id},
        now=now,
    )
    return key


def key_is_usable(key: AgentApiKey, now: datetime) -> bool:
    return key.revoked_at is None and (key.valid_until is None or now < key.valid_until)


@own_transactions
def do_record_nonce(key: AgentApiKey, nonce: str, now: datetime) -> bool:
    """True the first time this key sends this nonce, False for a replay."""
    from .models import AgentNonce

    try:
        with transaction.atomic():
            AgentNonce.objects.create(key=key, nonce=nonce, seen_at=now)
    except IntegrityError:
        return False
    return True


def purge_nonces(now: datetime | None = None) -> int:
    """Forget nonces older than the signature window: a request that old is
    refused by its timestamp anyway."""
    from .models import AgentNonce

    now = now or clock.now()
    cutoff = now - timedelta(seconds=2 * settings.AGENTS_SIGNATURE_WINDOW_SECONDS)
    deleted, _rows = AgentNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


# --- Deposits ---------------------------------------------------------------------


def _staff_actor(user: Any) -> str:
    return f"staff:{user.get_username()}"


@own_transactions
def do_record_deposit(
    agent: Agent,
    *,
    amount: int,
    currency: str,
    bank_reference: str,
    staff: Any,
    now: datetime | None = None,
) -> AgentDeposit:
    now = now or clock.now()
    currency = (currency or "").upper()
    reference = (bank_reference or "").strip()
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise AgentError(_("Enter an amount greater than zero."), code="amount_not_positive")
    if currency != agent.currency:
        raise AgentError(
            _("The agent's float is in %(float)s, not %(currency)s."),
            code="currency_mismatch",
            params={"float": agent.currency, "currency": currency},
        )
    if not reference:
        raise AgentError(_("Enter the bank reference."), code="reference_required")
    with transaction.atomic():
        if AgentDeposit.objects.filter(agent=agent, bank_reference=reference).exists():
            raise AgentError(
                _("A deposit with this bank reference is already recorded."),
                code="reference_taken",
            )
        deposit = AgentDeposit.objects.create(
            agent=agent,
            amount=amount,
            currency=currency,
            bank_reference=reference[:100],
            recorded_by=staff,
            recorded_at=now,
        )
        record(
            _staff_actor(staff),
            AuditAction.AGENT_DEPOSIT_RECORD,
            f"agent-deposit:{deposit.pk}",
            {"agent": agent.code, "amount": amount, "currency": currency, "reference": reference},
            now=now,
        )
    return deposit


def _lock_deposit(deposit: AgentDeposit, staff: Any) -> AgentDeposit:
    """The deposit, row-locked, once it is clear `staff` is not its recorder."""
    locked = (
        AgentDeposit.objects.select_for_update(of=("self",))
        .select_related("agent")
        .get(pk=deposit.pk)
    )
    if locked.recorded_by_id == staff.pk:
        raise AgentError(
            _("The deposit must be approved or rejected by someone other than who recorded it."),
            code="same_person",
        )
    return locked


@one_transaction
def do_approve_deposit(
    deposit: AgentDeposit, *, staff: Any, now: datetime | None = None
) -> AgentDeposit:
    """Credit the float: the second person's approval. Approving twice is a no-op."""
    now = now or clock.now()
    locked = _lock_deposit(deposit, staff)
    if locked.status == DepositStatus.APPROVED:
        return locked
    if locked.status != DepositStatus.PENDING:
        raise AgentError(_("This deposit was rejected."), code="deposit_rejected")
    agent = locked.agent
    post_transfers(
        f"agent-deposit:{locked.pk}:approve",
        [
            Leg(
                deposit_clearing(locked.currency),
                float_account(agent),
                locked.amount,
                "agent.deposit",
            )
        ],
        description=f"deposit {agent.code} {locked.bank_reference}",
        now=now,
    )
    locked.status = DepositStatus.APPROVED
    locked.decided_by = staff
    locked.decided_at = now
    locked.save(update_fields=["status", "decided_by", "decided_at"])
    record(
        _staff_actor(staff),
        AuditAction.AGENT_DEPOSIT_APPROVE,
        f"agent-deposit:{locked.pk}",
        {"agent": agent.code, "amount": locked.amount, "currency": locked.currency},
        now=now,
    )
    return locked


@one_transaction
def do_reject_deposit(
    deposit: AgentDeposit, *, staff: Any, note: str = "", now: datetime | None = None
) -> AgentDeposit:
    now = now or clock.now()
    locked = _lock_deposit(deposit, staff)
    if locked.status == DepositStatus.REJECTED:
        return locked
    if locked.status != DepositStatus.PENDING:
        raise AgentError(_("This deposit is already approved."), code="deposit_approved")
    locked.status = DepositStatus.REJECTED
    locked.decided_by = staff
    locked.decided_at = now
    locked.note = note[:200]
    locked.save(update_fields=["status", "decided_by", "decided_at", "note"])
    record(
        _staff_actor(staff),
        AuditAction.AGENT_DEPOSIT_REJECT,
        f"agent-deposit:{locked.pk}",
        {"agent": locked.agent.code, "note": note},
        now=now,
    )
    return locked


# --- Pricing ----------------------------------------------------------------------


def discount_percent(agent: Agent, plan_code: str) -> Decimal:
    override = agent.plan_discounts.filter(plan_code=plan_code).first()
    return override.discount_percent if override else agent.discount_percent


def wholesale_price(agent: Agent, plan_code: str, retail: int) -> int:
    """Retail less the agent's discount, rounded in leb's favour."""
    return _discounted(retail, discount_percent(agent, plan_code))


def _discounted(retail: int, percent: Decimal) -> int:
    discount = (Decimal(retail) * percent / 100).to_integral_value(rounding=ROUND_FLOOR)
    return retail - int(discount)


@dataclass(frozen=True)
class AgentQuote:
    line: Line
    plan: Plan
    quote: Quote
    wholesale: int

    @property
    def retail(self) -> int:
        return self.quote.price

    @property
    def commission(self) -> int:
        return self.quote.price - self.wholesale


def check_external_id(external_id: str) -> str:
    """The external id as stored, or AgentRefused(external_id_invalid)."""
    external_id = (external_id or "").strip()
    if not EXTERNAL_ID_RE.fullmatch(external_id):
        raise AgentRefused(
            _(
                "external_id must be 1 to %(max)d letters, digits, punctuation or inner "
                "spaces (ASCII)."
            ),
            "external_id_invalid",
            max=EXTERNAL_ID_MAX,
        )
    return external_id


def check_plan_code(plan_code: str) -> str:
    """A plan code's shape (a slug), or AgentRefused(plan_code_invalid): input
    that can name no plan is bad input, refused before anything is written."""
    if not isinstance(plan_code, str) or not PLAN_CODE_RE.fullmatch(plan_code):
        raise AgentRefused(
            _("This is not a plan code: give the code of a plan, e.g. hk-30."),
            "plan_code_invalid",
        )
    return plan_code


def find_line(msisdn: str) -> Line:
    try:
        number = normalize_msisdn(msisdn)
    except ValidationError as exc:
        raise AgentRefused(_("This is not a valid phone number."), code="invalid_number") from exc
    line = live_line_for_number(number)
    if line is None:
        raise AgentRefused(_("No line in service has this number."), "line_unknown", status=404)
    return line


_LINE_QUOTE_CODES = ("line_terminated", "line_inventory")


def _priced(agent: Agent, line: Line, plan_code: str, now: datetime) -> AgentQuote:
    """Raises _Declined for a sale this agent may not make."""
    plan = Plan.objects.filter(code=plan_code).first()
    if plan is None or plan.currency != agent.currency:
        raise _Declined(FailureReason.PLAN_NOT_ALLOWED, "plan_unknown" if plan is None else "")
    if agent.allowed_plan_codes and plan.code not in agent.allowed_plan_codes:
        raise _Declined(FailureReason.PLAN_NOT_ALLOWED, "not_in_agent_plans")
    try:
        frozen = quote(line, plan, Channel.AGENT, "", now)
    except QuoteError as exc:
        raise _declined_from_quote(exc) from exc
    return AgentQuote(
        line=line,
        plan=plan,
        quote=frozen,
        wholesale=wholesale_price(agent, plan.code, frozen.price),
    )


def _declined_from_quote(exc: ValidationError) -> _Declined:
    code = getattr(exc, "code", "") or ""
    if code in _LINE_QUOTE_CODES:
        return _Declined(FailureReason.LINE_TERMINATED, code)
    if code == "adds_nothing":
        return _Declined(FailureReason.ADDS_NOTHING)
    return _Declined(FailureReason.PLAN_NOT_ALLOWED, code[:40])


def quote_for_agent(
    agent: Agent, msisdn: str, plan_code: str, now: datetime | None = None
) -> AgentQuote:
    """What the agent would pay; writes nothing. Raises AgentRefused."""
    now = now or clock.now()
    line = find_line(msisdn)
    check_plan_code(plan_code)
    try:
        return _priced(agent, line, plan_code, now)
    except _Declined as exc:
        raise AgentRefused(reason_text(exc.reason), str(exc.reason)) from exc


@dataclass(frozen=True)
class Offer:
    """A plan the agent may sell, priced for one line; `refusal` says why it
    cannot be sold to this line now (then `priced` is None)."""

    plan: Plan
    priced: AgentQuote | None
    refusal: str = ""


def agent_plans(agent: Agent, now: datetime | None = None) -> list[Plan]:
    """The plans this agent may sell: its currency, on sale on the agent
    channel, and in its list of allowed plans if it has one."""
    now = now or clock.now()
    plans = Plan.objects.filter(currency=agent.currency, is_active=True)
    if agent.allowed_plan_codes:
        plans = plans.filter(code__in=agent.allowed_plan_codes)
    return [
        plan
        for plan in plans
        if Channel.AGENT in (plan.channels or [])
        and (plan.active_from is None or plan.active_from <= now)
        and (plan.active_until is None or now < plan.active_until)
    ]


def offers_for_agent(agent: Agent, line: Line, now: datetime | None = None) -> list[Offer]:
    """Every plan the agent may sell, priced for this line; writes nothing."""
    now = now or clock.now()
    offers = []
    for plan in agent_plans(agent, now):
        try:
            offers.append(Offer(plan, _priced(agent, line, plan.code, now)))
        except _Declined as exc:
            offers.append(Offer(plan, None, reason_text(exc.reason)))
    return offers


# --- Sales ------------------------------------------------------------------------


@dataclass(frozen=True)
class SaleResult:
    topup: AgentTopUp
    replayed: bool = False


def _request_hash(**fields: Any) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


# PostgreSQL advisory lock class of an agent (the second key is its id): sales
# take it shared, changes of the agent exclusive. A row lock FOR SHARE lets a
# new sharer past a waiting FOR UPDATE, so under steady sales a suspension
# could wait for ever; the lock manager queues a later sale behind it.
_AGENT_GATE = 0x1EB_A6E7


def _gate(agent_id: int, *, exclusive: bool) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite: the IMMEDIATE transaction already holds the write lock
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s::int4, %s::int4)", [_AGENT_GATE, agent_id % 2**31])


def lock_agent(agent_id: int) -> Agent:
    """The agent's row for a change of the agent (status, terms, callback URL,
    a reversal): waits for the sales in flight, and sales after it wait for
    its commit, then see the change."""
    _gate(agent_id, exclusive=True)
    return Agent.objects.select_for_update().get(pk=agent_id)


def _share_agent(agent_id: int) -> Agent:
    """The agent's row for a sale, confirmation or expiry, FOR SHARE: sales of
    one agent run side by side, a change of the agent waits for them."""
    if connection.vendor != "postgresql":
        return Agent.objects.get(pk=agent_id)
    _gate(agent_id, exclusive=False)
    table = connection.ops.quote_name(Agent._meta.db_table)
    query = f"SELECT * FROM {table} WHERE id = %s FOR SHARE"  # noqa: S608
    return next(iter(Agent.objects.raw(query, [agent_id])))


def _has_daily_limits(agent: Agent) -> bool:
    return agent.daily_count_limit is not None or agent.daily_amount_limit is not None


def _hold_float(agent: Agent) -> Account:
    """For an agent with daily limits, its float row locked from here to the
    commit: one sale at a time, so today's count and amount are exact (the
    limits cannot change meanwhile: that waits for the agent's row)."""
    account = Account.objects.select_for_update().filter(code=float_code(agent)).first()
    return account if account is not None else float_account(agent)


def _check_active(agent: Agent) -> None:
    if agent.status != AgentStatus.ACTIVE:
        raise AgentRefused(
            _("This agent account is suspended: the API is closed."),
            "agent_suspended",
            status=403,
        )


def _day_start(now: datetime) -> datetime:
    day = timezone.localdate(now)
    return timezone.make_aware(datetime.combine(day, time.min))


def _check_amount_limits(agent: Agent, wholesale: int, now: datetime) -> None:
    if agent.max_transaction_amount is not None and wholesale > agent.max_transaction_amount:
        raise _Declined(FailureReason.LIMIT_REACHED, "per_transaction")
    if _has_daily_limits(agent):
        today = AgentTopUp.objects.filter(
            agent=agent, status__in=OPEN, created_at__gte=_day_start(now)
        ).aggregate(count=Count("pk"), amount=Sum("wholesale_price"))
        if agent.daily_count_limit is not None and today["count"] + 1 > agent.daily_count_limit:
            raise _Declined(FailureReason.LIMIT_REACHED, "daily_count")
        spent = today["amount"] or 0
        if agent.daily_amount_limit is not None and spent + wholesale > agent.daily_amount_limit:
            raise _Declined(FailureReason.LIMIT_REACHED, "daily_amount")


def _check_repeat(agent: Agent, msisdn: str, plan_code: str, now: datetime) -> None:
    """Exact while the caller holds the line's lock: the sale before it on
    this line has committed."""
    window = timedelta(minutes=settings.AGENTS_REPEAT_WINDOW_MINUTES)
    recent = AgentTopUp.objects.filter(
        agent=agent,
        msisdn=msisdn,
        plan_code=plan_code,
        status__in=OPEN,
        created_at__gte=now - window,
    )
    if recent.exists():
        raise _Declined(FailureReason.RECENTLY_TOPPED_UP)


def _sale_plan(agent: Agent, plan_code: str) -> tuple[Plan, Decimal]:
    """The plan and this agent's discount on it, in one query; _Declined if
    the agent may not sell it."""
    override = AgentPlanDiscount.objects.filter(agent=agent, plan_code=OuterRef("code")).values(
        "discount_percent"
    )[:1]
    plan = Plan.objects.filter(code=plan_code).annotate(override=Subquery(override)).first()
    if plan is None or plan.currency != agent.currency:
        raise _Declined(FailureReason.PLAN_NOT_ALLOWED, "plan_unknown" if plan is None else "")
    if agent.allowed_plan_codes and plan.code not in agent.allowed_plan_codes:
        raise _Declined(FailureReason.PLAN_NOT_ALLOWED, "not_in_agent_plans")
    found = plan.override
    return plan, (agent.discount_percent if found is None else Decimal(found))


def _sale_accounts(agent: Agent, *codes: str) -> dict[str, Account]:
    """The float, the commission account, sale clearing and any other of the
    agent's accounts named, in one query (a missing one is created)."""
    currency = agent.currency
    wanted = {
        float_code(agent): float_account,
        f"{AccountKind.AGENT_COMMISSION}:{agent.code}:{currency}": commission_account,
        f"{AccountKind.CLEARING}:{PROVIDER}:{currency}": lambda a: sale_clearing(a.currency),
        **{code: reservation_account for code in codes},
    }
    found = {a.code: a for a in Account.objects.filter(code__in=list(wanted))}
    for code, make in wanted.items():
        if code not in found:
            found[code] = make(agent)
        if found[code].currency != currency:
            raise AgentError(_("An account of this agent is in another currency."), code="currency")
    return found


def _insert_once(topup: AgentTopUp) -> bool:
    """Insert the top-up unless its agent already has one with its external id.
    A concurrent insert of the same id is waited for on the unique index: if
    it commits, this one inserts nothing (False); if it rolls back, this one
    goes in. One statement, no savepoint."""
    meta = AgentTopUp._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    name = connection.ops.quote_name
    sql = (
        f"INSERT INTO {name(meta.db_table)} ({', '.join(name(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({name('agent_id')}, {name('external_id')}) DO NOTHING "
        f"RETURNING {name(meta.pk.column)}"
    )
    values = [f.get_db_prep_save(getattr(topup, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    topup.pk = row[0]
    topup._state.adding = False
    topup._state.db = connection.alias
    return True


def _first_result(agent: Agent, external_id: str, digest: str, now: datetime) -> SaleResult:
    """What a request under an external id already used gets."""
    existing = AgentTopUp.objects.select_related("agent", "order").get(
        agent=agent, external_id=external_id
    )
    if existing.request_hash != digest:
        raise AgentRefused(
            _("This external_id was already used for a different top-up."),
            "external_id_conflict",
            status=409,
        )
    return SaleResult(_expire_if_due(existing, now), replayed=True)


def _create_order(agent: Agent, line: Line, plan: Plan, key: str, now: datetime) -> TopUpOrder:
    try:
        return do_create_order(
            line=line,
            channel=Channel.AGENT,
            idempotency_key=key,
            plan=plan,
            actor=agent.actor,
            now=now,
        )
    except (QuoteError, OrderError) as exc:
        raise _declined_from_quote(exc) from exc


def _sale_legs(
    accounts: dict[str, Account], agent: Agent, wholesale: int, retail: int
) -> list[Leg]:
    currency = agent.currency
    float_acc = accounts[float_code(agent)]
    clearing = accounts[f"{AccountKind.CLEARING}:{PROVIDER}:{currency}"]
    legs = [Leg(float_acc, clearing, wholesale, "agent.sale")]
    if retail > wholesale:
        commission = accounts[f"{AccountKind.AGENT_COMMISSION}:{agent.code}:{currency}"]
        legs.append(Leg(commission, clearing, retail - wholesale, "agent.commission"))
    return legs


def _post_sale(
    accounts: dict[str, Account],
    agent: Agent,
    wholesale: int,
    retail: int,
    key: str,
    external_id: str,
    now: datetime,
) -> None:
    """The float debit: the sale's last write, so the float row stays locked
    for this statement and the commit only. The checked UPDATE refuses an
    overdraft; the caller's transaction then rolls back whole."""
    try:
        post_transfers(
            key,
            _sale_legs(accounts, agent, wholesale, retail),
            description=f"agent sale {agent.code} {external_id}"[:200],
            now=now,
            savepoint=False,
        )
    except InsufficientFunds as exc:
        raise _Declined(FailureReason.INSUFFICIENT_FLOAT) from exc


def _pay_and_fulfil(order: TopUpOrder, key: str, now: datetime) -> TopUpOrder:
    """The ordinary order path, paid from sale clearing (credited by the
    sale's posting, made after this, in the same transaction)."""
    order = do_pay_and_fulfil(
        order,
        amount=order.price,
        currency=order.currency,
        provider=PROVIDER,
        reference=key,
        now=now,
    )
    if order.status != OrderStatus.FULFILLED:
        # The line left service between the quote and the lock.
        raise _Declined(FailureReason.LINE_TERMINATED, "line_left_service")
    return order


def _covers(agent: Agent, accounts: dict[str, Account], wholesale: int, now: datetime) -> bool:
    """Whether the float (as last read; the debit checks again) covers the
    sale, after giving back this agent's overdue two-step holds if short."""
    float_acc = accounts[float_code(agent)]
    if float_acc.balance >= wholesale:
        return True
    if release_expired_for(agent, now):
        float_acc.refresh_from_db(fields=["balance"])
    return float_acc.balance >= wholesale


def _sell(
    agent_id: int, topup: AgentTopUp, line: Line, allow_repeat: bool, now: datetime
) -> SaleResult:
    """One sale in the caller's transaction; _Declined leaves it to be rolled back.

    Lock order: agent (shared), the external id's index entry, the float
    (agents with daily limits only), line and order (do_create_order,
    do_pay_and_fulfil), the wallet, then the float's debit last."""
    agent = _share_agent(agent_id)
    topup.agent = agent
    if agent.status != AgentStatus.ACTIVE:
        # A request already answered is answered again; a new one is refused.
        if AgentTopUp.objects.filter(agent=agent, external_id=topup.external_id).exists():
            return _first_result(agent, topup.external_id, topup.request_hash, now)
        _check_active(agent)
    if not _insert_once(topup):
        return _first_result(agent, topup.external_id, topup.request_hash, now)
    key = topup.ledger_key
    plan, percent = _sale_plan(agent, topup.plan_code)
    held = _hold_float(agent) if _has_daily_limits(agent) else None
    order = _create_order(agent, line, plan, key, now)  # locks the line; the one quote
    topup.retail_price = order.price
    topup.wholesale_price = wholesale = _discounted(order.price, percent)
    _check_amount_limits(agent, wholesale, now)
    if not allow_repeat:
        _check_repeat(agent, line.msisdn, plan.code, now)
    two_step = topup.mode == TopUpMode.TWO_STEP
    reservation = reservation_code(agent) if two_step else ""
    accounts = _sale_accounts(agent, *([reservation] if reservation else []))
    if held is not None:
        accounts[held.code] = held
    if not _covers(agent, accounts, wholesale, now):
        raise _Declined(FailureReason.INSUFFICIENT_FLOAT)
    # The top-up's row as it ends, written before fulfilment: from the
    # receipt number on (a row every order takes) only the callback and the
    # float's debit remain before the commit.
    topup.order = order
    fields = ["status", "order", "wholesale_price", "retail_price"]
    if topup.mode == TopUpMode.INSTANT:
        topup.status = AgentTopUpStatus.COMPLETED
        topup.confirmed_at = topup.completed_at = now
        fields += ["confirmed_at", "completed_at"]
    else:
        topup.status = AgentTopUpStatus.CREATED
        topup.expires_at = now + timedelta(minutes=settings.AGENTS_TWO_STEP_MINUTES)
        fields.append("expires_at")
    topup.save(update_fields=fields)
    if topup.mode == TopUpMode.INSTANT:
        topup.order = _pay_and_fulfil(order, key, now)
        callbacks.queue_callback(topup, now)
        _post_sale(accounts, agent, wholesale, order.price, key, topup.external_id, now)
    else:
        float_acc = accounts[float_code(agent)]
        try:
            post_transfers(
                f"{key}:reserve",
                [Leg(float_acc, accounts[reservation], wholesale, "agent.reserve")],
                description=f"agent hold {agent.code} {topup.external_id}"[:200],
                now=now,
                savepoint=False,
            )
        except InsufficientFunds as exc:
            raise _Declined(FailureReason.INSUFFICIENT_FLOAT) from exc
    return SaleResult(topup)


def _keep_refusal(
    agent_id: int, topup: AgentTopUp, declined: _Declined, now: datetime
) -> SaleResult:
    """Store a refused sale (its own transaction, after the sale's rolled back)
    so a retry by external id learns the outcome; a request that took the
    external id meanwhile is answered instead."""
    with transaction.atomic():
        agent = _share_agent(agent_id)
        _check_active(agent)
        topup.agent = agent
        topup.pk = None
        topup._state.adding = True
        topup.order = None
        topup.status = AgentTopUpStatus.FAILED
        topup.reason = declined.reason
        topup.reason_detail = declined.detail[:40]
        topup.confirmed_at = topup.completed_at = topup.expires_at = None
        topup.finished_at = now
        if not _insert_once(topup):
            return _first_result(agent, topup.external_id, topup.request_hash, now)
        callbacks.queue_callback(topup, now)
    return SaleResult(topup)


@own_transactions
def do_create_agent_topup(
    agent: Agent,
    *,
    external_id: str,
    msisdn: str,
    plan_code: str,
    mode: str = TopUpMode.INSTANT,
    allow_repeat: bool = False,
    keep_refused: bool = True,
    now: datetime | None = None,
) -> SaleResult:
    """Sell a top-up. The same external id with the same request returns the
    first result (a concurrent one waits for it); with another request,
    AgentRefused(external_id_conflict).
    A business refusal is kept as a failed top-up with its reason (the API's
    rule, so a retry by external id learns the outcome); with
    `keep_refused=False` (the portal, where a person reads the answer at once)
    it raises AgentRefused with the reason as its code and writes nothing.
    Bad input (number, unknown line) raises AgentRefused and writes nothing.

    Sales of one agent overlap: each holds the agent's row FOR SHARE, claims
    its external id first and debits the float last (docs/agents.md,
    "Concurrency")."""
    now = now or clock.now()
    external_id = check_external_id(external_id)
    if mode not in TopUpMode.values:
        raise AgentRefused(_("mode must be instant or two_step."), "mode_invalid")
    line = find_line(msisdn)
    check_plan_code(plan_code)
    topup = AgentTopUp(
        public_id=uuid.uuid4().hex,
        agent_id=agent.pk,
        external_id=external_id,
        request_hash=_request_hash(
            msisdn=line.msisdn, plan_code=plan_code, mode=mode, allow_repeat=allow_repeat
        ),
        msisdn=line.msisdn,
        plan_code=plan_code[:40],
        mode=mode,
        status=AgentTopUpStatus.FAILED,  # until the sale's end; never seen so
        currency=agent.currency,
        created_at=now,
    )
    try:
        # Outermost (the API) this is the transaction; inside a caller's, a
        # kept refusal needs a savepoint, while a raised one (the portal)
        # leaves the caller's transaction too: nothing of the sale stays.
        with transaction.atomic(savepoint=keep_refused):
            return _sell(agent.pk, topup, line, allow_repeat, now)
    except _Declined as declined:
        if not keep_refused:
            raise AgentRefused(
                reason_text(declined.reason), str(declined.reason), detail=declined.detail
            ) from declined
        return _keep_refusal(agent.pk, topup, declined, now)


def _release(
    topup: AgentTopUp, status: str, now: datetime, reason: str = "", detail: str = ""
) -> None:
    """Give the reserved float back and close the unpaid order (caller holds the locks)."""
    key = topup.ledger_key
    reverse_group(f"{key}:reserve", f"{key}:release", now=now)
    if topup.order_id is not None:
        order = TopUpOrder.objects.get(pk=topup.order_id)
        if order.status == OrderStatus.PENDING_PAYMENT:
            do_cancel_order(order, reason=f"agent top-up {status}", now=now)
    topup.status = status
    topup.reason = reason
    topup.reason_detail = detail[:40]
    topup.finished_at = now
    topup.save(update_fields=["status", "reason", "reason_detail", "finished_at"])
    callbacks.queue_callback(topup, now)


def release_expired_for(agent: Agent, now: datetime) -> int:
    """Release this agent's two-step reservations past their time (the
    caller holds the agent's row). One another transaction is releasing or
    confirming is skipped."""
    due = list(
        AgentTopUp.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("agent")
        .filter(agent=agent, status=AgentTopUpStatus.CREATED, expires_at__lte=now)
        .order_by("pk")
    )
    for topup in due:
        _release(topup, AgentTopUpStatus.EXPIRED, now)
    return len(due)


def _expire_if_due(topup: AgentTopUp, now: datetime) -> AgentTopUp:
    if (
        topup.status == AgentTopUpStatus.CREATED
        and topup.expires_at is not None
        and topup.expires_at <= now
    ):
        with transaction.atomic():
            _share_agent(topup.agent_id)
            topup = (
                AgentTopUp.objects.select_for_update(of=("self",))
                .select_related("agent", "order")
                .get(pk=topup.pk)
            )
            if topup.status == AgentTopUpStatus.CREATED:
                _release(topup, AgentTopUpStatus.EXPIRED, now)
    return topup


def refresh_topup(topup: AgentTopUp, now: datetime | None = None) -> AgentTopUp:
    """The top-up as it stands now: an overdue reservation is released on read."""
    return _expire_if_due(topup, now or clock.now())


def expire_agent_topups(now: datetime | None = None, *, batch_size: int = 200) -> int:
    """The periodic job: release every overdue two-step reservation."""
    now = now or clock.now()
    ids = list(
        AgentTopUp.objects.filter(status=AgentTopUpStatus.CREATED, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    done = 0
    for topup_id in ids:
        before = AgentTopUp.objects.select_related("agent", "order").get(pk=topup_id)
        if _expire_if_due(before, now).status == AgentTopUpStatus.EXPIRED:
            done += 1
    return done


@one_transaction
def do_confirm_agent_topup(
    agent: Agent, public_id: str, *, now: datetime | None = None
) -> AgentTopUp:
    """Complete a two-step top-up before it expires. Confirming a completed
    one returns it; an expired one comes back with status expired."""
    now = now or clock.now()
    if not PUBLIC_ID_RE.fullmatch(public_id or ""):
        raise AgentRefused(_("There is no such top-up."), "not_found", status=404)
    agent = _share_agent(agent.pk)
    topup = (
        AgentTopUp.objects.select_for_update(of=("self",))
        .select_related("agent", "order")
        .filter(agent=agent, public_id=public_id)
        .first()
    )
    if topup is None:
        raise AgentRefused(_("There is no such top-up."), "not_found", status=404)
    if topup.status == AgentTopUpStatus.COMPLETED:
        return topup
    if topup.mode != TopUpMode.TWO_STEP or topup.status != AgentTopUpStatus.CREATED:
        raise AgentRefused(
            _("This top-up is not awaiting confirmation."), "topup_not_open", status=409
        )
    _check_active(agent)
    if topup.expires_at is not None and topup.expires_at <= now:
        _release(topup, AgentTopUpStatus.EXPIRED, now)
        return topup
    assert topup.order is not None
    key = topup.ledger_key
    # The lock order of a sale: an agent with daily limits holds its float
    # from here, any other takes it last.
    held = _hold_float(agent) if _has_daily_limits(agent) else None
    try:
        with transaction.atomic():
            order = _pay_and_fulfil(topup.order, key, now)
            accounts = _sale_accounts(agent)
            if held is not None:
                accounts[held.code] = held
            reverse_group(f"{key}:reserve", f"{key}:release", now=now)
            _post_sale(
                accounts, agent, topup.wholesale_price, order.price, key, topup.external_id, now
            )
            topup.order = order
            topup.status = AgentTopUpStatus.COMPLETED
            topup.confirmed_at = topup.completed_at = now
            topup.save(update_fields=["status", "confirmed_at", "completed_at", "order"])
            callbacks.queue_callback(topup, now)
    except _Declined as declined:
        _release(topup, AgentTopUpStatus.FAILED, now, declined.reason, declined.detail)
    return topup


@own_transactions
def do_reverse_agent_topup(
    topup: AgentTopUp, *, staff: Any, reason: str, now: datetime | None = None
) -> AgentTopUp:
    """Staff undo a completed sale: the subscriber's top-up is refunded (the
    wallet must still hold the credit) and the float and commission are
    given back."""
    now = now or clock.now()
    if not reason.strip():
        raise AgentError(_("Give a reason for the reversal."), code="reason_required")
    actor = _staff_actor(staff)
    with transaction.atomic():
        # Alone with the agent: no sale of it runs meanwhile, so the refund's
        # wallet and the float's credit cannot be taken in another order.
        lock_agent(topup.agent_id)
        topup = (
            AgentTopUp.objects.select_for_update(of=("self",))
            .select_related("agent", "order")
            .get(pk=topup.pk)
        )
        if topup.status == AgentTopUpStatus.REVERSED:
            return topup
        if topup.status != AgentTopUpStatus.COMPLETED or topup.order is None:
            raise AgentError(
                _("Only a completed agent top-up can be reversed."), code="not_completed"
            )
        # The agent's money comes back below, through the ledger: nothing is
        # owed at a payment provider (topups knows "agent" is settled inside).
        do_refund_order(topup.order, reason=reason, actor=actor, now=now)
        key = topup.ledger_key
        reverse_group(key, f"{key}:reversal", now=now)
        topup.status = AgentTopUpStatus.REVERSED
        topup.finished_at = now
        topup.save(update_fields=["status", "finished_at"])
        callbacks.queue_callback(topup, now)
        record(
            actor,
            AuditAction.AGENT_TOPUP_REVERSE,
            f"agent-topup:{topup.public_id}",
            {"agent": topup.agent.code, "external_id": topup.external_id, "reason": reason},
            now=now,
        )
    return topup


# --- The agent portal -----------------------------------------------------------


@one_transaction
def do_sell_from_portal(
    member: AgentMember,
    *,
    external_id: str,
    msisdn: str,
    plan_code: str,
    allow_repeat: bool = False,
    now: datetime | None = None,
) -> SaleResult:
    """A sale a member makes in the portal: the API's sale (instant), except
    that a refusal raises AgentRefused and writes nothing, and the person who
    sold it is written to the audit log with it, in the same transaction. The
    same external id (one per confirm form) replays the first sale, so a
    double submit sells once."""
    now = now or clock.now()
    result = do_create_agent_topup(
        member.agent,
        external_id=external_id,
        msisdn=msisdn,
        plan_code=plan_code,
        mode=TopUpMode.INSTANT,
        allow_repeat=allow_repeat,
        keep_refused=False,
        now=now,
    )
    if not result.replayed:
        topup = result.topup
        record(
            member.actor,
            "agent.portal.sale",
            f"agent-topup:{topup.public_id}",
            {
                "agent": member.agent.code,
                "external_id": topup.external_id,
                "plan_code": topup.plan_code,
                "wholesale_price": topup.wholesale_price,
                "currency": topup.currency,
            },
            now=now,
        )
    return result


def clean_callback_url(url: str) -> str:
    """The callback URL as stored, or a translated ValidationError: a valid
    URL on https:// whose host resolves to public addresses only (the rules
    of leb's webhooks, checked again before every send). Empty: no callbacks."""
    url = (url or "").strip()
    if not url:
        return ""
    field = Agent._meta.get_field("callback_url")
    if len(url) > (field.max_length or 200):
        raise ValidationError(
            _("The address is too long (at most %(max)d characters)."),
            code="too_long",
            params={"max": field.max_length or 200},
        )
    URLValidator(schemes=["http", "https"])(url)
    return check_webhook_url(url)


@own_transactions
def do_set_callback_url(
    agent: Agent, url: str, *, actor: str, now: datetime | None = None
) -> Agent:
    """Change where leb POSTs the agent's callbacks; ValidationError (nothing
    written) for an address leb may not call."""
    now = now or clock.now()
    cleaned = clean_callback_url(url)
    with transaction.atomic():
        agent = lock_agent(agent.pk)
        if agent.callback_url == cleaned:
            return agent
        before = agent.callback_url
        agent.callback_url = cleaned
        agent.save(update_fields=["callback_url"])
        record(
            actor,
            "agent.callback_url",
            f"agent:{agent.code}",
            {"from": before, "to": cleaned},
            now=now,
        )
    return agent
