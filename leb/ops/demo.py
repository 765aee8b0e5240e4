"""Demo data: three number policies modelled on real operators, HKD and GBP
plans, two promotions (running from a week before the load to six weeks
after it, renewed by a later load) and about fifty lines in every state.

The validity cap on purpose: the demo subscriber's active HKD line (policy
hk-180, 365-day cap) has days left, so its "HK$100 · 365 days" and
"HK$200 · 365 days" plans add fewer than 365 days, and every channel says so
before payment (see `capped_demo_line`).

Lines are built with the real actions at back-dated times (create, activate,
order, pay, fulfil, refund), then the sweep runs at `now`, so every stored
status, ledger transfer, history row and receipt is one production would
have written. Identifiers and scenarios come from a fixed seed; a second
run finds everything in place and changes nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import phonenumbers
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext as _
from stdnum import luhn

from leb.accounts.actions import do_mark_contacts_verified
from leb.agents.demo import (
    FINANCE_USERNAME,
    demo_agent_login,
    demo_portal_logins,
    load_demo_agents,
    totp_key_base32,
)
from leb.announcements.demo import load_demo_announcements
from leb.autokeep.demo import load_demo_autokeep
from leb.catalog.models import FreeAmountRule, Plan, Promotion
from leb.common import clock
from leb.finance.actions import do_reconcile_day, yesterday
from leb.finance.models import SettlementRun
from leb.lines import lifecycle
from leb.lines.actions import do_activate_line, do_create_line, do_set_line_owner, sweep_lines
from leb.lines.models import Line, LineStatus, NumberPolicy, PhoneNumber
from leb.notifications.demo import load_demo_notifications
from leb.payments.actions import settle
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.payments.providers import sandbox
from leb.payments.providers.base import SUCCEEDED, Outcome
from leb.provisioning.demo import load_demo_esim
from leb.reminders.demo import load_demo_reminders
from leb.support.demo import load_demo_support
from leb.topups.actions import (
    do_admin_topup,
    do_cancel_order,
    do_create_order,
    do_mark_refund_returned,
    do_refund_order,
)
from leb.topups.models import TopUpOrder
from leb.vouchers.demo import load_demo_vouchers

SEED = 8_522_025
ICCID_PREFIX = "8985200"
ACTOR = "demo"
PROVIDER = "sandbox"
# Demo-only credentials, printed by `leb demo`; never used outside demo data.
OPS_USERNAME, OPS_PASSWORD = "ops", "leb-demo-ops"
SUPPORT_USERNAME, SUPPORT_PASSWORD = "support", "leb-demo-support"
# The back office's role groups (created by its migration, docs/backoffice.md)
# that the demo staff belong to.
STAFF_ROLES = {SUPPORT_USERNAME: "support", FINANCE_USERNAME: "finance"}
DEMO_USERNAME, DEMO_PASSWORD = "demo", "leb-demo-subscriber"
DEMO_EMAIL = "demo@example.com"

# Timers as real operators publish them; `leb demo` seeds one policy each.
POLICIES: dict[str, dict[str, Any]] = {
    # Hong Kong 保号卡: 180 days per top-up, days stack up to a year ahead.
    "hk-180": {
        "name": "HK 180-day card (stacking, 365-day cap)",
        "number_prefix": "+852",
        "first_topup_days": 180,
        "grace_days": 30,
        "suspension_days": 60,
        "quarantine_days": 180,
        "max_validity_days": 365,
        "extension_rule": "stack",
    },
    # UK (EE-style): 180 days, receive-only until day 269, number lost at day 273.
    "uk-180": {
        "name": "UK 180-day SIM (receive-only to day 269, lost at 273)",
        "number_prefix": "+44",
        "first_topup_days": 180,
        "grace_days": 89,
        "suspension_days": 4,
        "quarantine_days": 90,
        "max_validity_days": None,
        "extension_rule": "reset",
    },
    # Australia (Lebara-style): 365 days, 10 days grace, number lost at 30.
    "au-365": {
        "name": "AU 365-day SIM (10 days grace, lost at 30)",
        "first_topup_days": 365,
        "grace_days": 10,
        "suspension_days": 20,
        "quarantine_days": 90,
        "max_validity_days": None,
        "extension_rule": "reset",
    },
}

# code, currency, price, credit, days, English, Simplified, Traditional
PLANS: list[tuple[str, str, int, int, int, str, str, str]] = [
    ("hk-30-90", "HKD", 3000, 3000, 90, "HK$30 · 90 days", "30港元 · 90天", "港幣30元 · 90日"),
    ("hk-50-180", "HKD", 5000, 5000, 180, "HK$50 · 180 days", "50港元 · 180天", "港幣50元 · 180日"),
    (
        "hk-100-365",
        "HKD",
        10000,
        10000,
        365,
        "HK$100 · 365 days",
        "100港元 · 365天",
        "港幣100元 · 365日",
    ),
    (
        "hk-200-365",
        "HKD",
        20000,
        20000,
        365,
        "HK$200 · 365 days",
        "200港元 · 365天",
        "港幣200元 · 365日",
    ),
    ("uk-5-180", "GBP", 500, 500, 180, "£5 · 180 days", "5英镑 · 180天", "5英鎊 · 180日"),
    ("uk-10-180", "GBP", 1000, 1000, 180, "£10 · 180 days", "10英镑 · 180天", "10英鎊 · 180日"),
    ("uk-20-180", "GBP", 2000, 2000, 180, "£20 · 180 days", "20英镑 · 180天", "20英鎊 · 180日"),
]

FREE_AMOUNT_HKD = {
    "currency": "HKD",
    "min_amount": 1000,
    "max_amount": 100000,
    "tiers": [[1000, 30], [5000, 180], [10000, 365]],
}
FREE_AMOUNTS = [2000, 5000, 8000, 10000]

AUTO_PROMO = "hk-bonus-10"
CODE_PROMO = "hk-keep30"
PROMO_CODE = "KEEP30"
AUTO_PROMO_BUDGET = 20000
# Both promotions run from a little before the load to some weeks after it:
# (days before now, days after now). Every load looks again: a promotion that
# has ended, has not started, ends within PROMO_MIN_LEFT_DAYS or has spent
# most of its budget is renewed, so `leb demo` run later never leaves the
# demo without a running promotion.
AUTO_PROMO_WINDOW = (7, 42)
CODE_PROMO_WINDOW = (7, 42)
PROMO_MIN_LEFT_DAYS = 14
CODE_PROMO_DAYS = 30

# policy, currency, region, lines wanted per status
GROUPS: list[tuple[str, str, str, dict[str, int]]] = [
    (
        "hk-180",
        "HKD",
        "HK",
        {"inventory": 4, "active": 8, "grace": 3, "suspended": 3, "terminated": 4},
    ),
    (
        "uk-180",
        "GBP",
        "GB",
        {"inventory": 3, "active": 6, "grace": 3, "suspended": 2, "terminated": 3},
    ),
    (
        "au-365",
        "HKD",
        "HK",
        {"inventory": 2, "active": 4, "grace": 2, "suspended": 2, "terminated": 2},
    ),
]
POOL_SIZE = 12
PAY_DELAY = timedelta(minutes=1)
REFUND_DELAY = timedelta(minutes=20)
MAX_HISTORY_DAYS = 760


@dataclass
class Step:
    """One top-up in a line's past."""

    at: datetime
    plan_code: str = ""
    amount: int | None = None
    promo_code: str = ""
    channel: str = "web"
    by_staff: bool = False
    refund: bool = False

    def days(self) -> int:
        if self.plan_code:
            plan_days = next(p[4] for p in PLANS if p[0] == self.plan_code)
            return plan_days + (CODE_PROMO_DAYS if self.promo_code else 0)
        assert self.amount is not None
        return FreeAmountRule(**FREE_AMOUNT_HKD).validity_days_for(self.amount)


@dataclass
class LineSpec:
    iccid: str
    msisdn: str
    policy_code: str
    currency: str
    target: str
    reserve_number: bool = True
    owner: str = ""
    created_at: datetime | None = None
    activated_at: datetime | None = None
    steps: list[Step] = field(default_factory=list)
    cancelled_order_at: datetime | None = None
    pending_order: bool = False


@dataclass
class DemoSummary:
    created_lines: int = 0
    lines_by_status: dict[str, int] = field(default_factory=dict)
    numbers_by_status: dict[str, int] = field(default_factory=dict)
    orders_by_status: dict[str, int] = field(default_factory=dict)
    policies: int = 0
    plans: int = 0
    promotions: int = 0
    # The demo agent: its code and the file with its API key (for `leb agent`).
    agent_code: str = ""
    agent_key_file: str = ""


def demo_logins() -> list[tuple[str, str, str]]:
    """(role, username, password) of the demo accounts."""
    return [
        ("admin", OPS_USERNAME, OPS_PASSWORD),
        ("support", SUPPORT_USERNAME, SUPPORT_PASSWORD),
        demo_agent_login(),
        *demo_portal_logins(),
        ("subscriber", DEMO_USERNAME, DEMO_PASSWORD),
    ]


def demo_login_notes() -> list[str]:
    """What else the demo logins need: the agent portal asks for a 6-digit code."""
    keys = ", ".join(
        f"{username} {totp_key_base32(username)}" for _role, username, _pw in demo_portal_logins()
    )
    return [
        _(
            "Agent portal: /agent/portal/ (agent logins; a 6-digit code is asked after the password)."
        ),
        "  "
        + _("The code: %(command)s (demo accounts, with LEB_DEBUG on only),")
        % {"command": ".venv/bin/leb agents totp <username>"},
        "  " + _("or add the key to an authenticator app: %(keys)s") % {"keys": keys},
    ]


# --- Identifiers -------------------------------------------------------------------


def _iccid(rng: random.Random) -> str:
    body = f"{ICCID_PREFIX}{rng.randrange(10**11):011d}"
    return body + luhn.calc_check_digit(body)


def _msisdn(rng: random.Random, region: str) -> str:
    """A number phonenumbers accepts as a valid mobile of `region`."""
    while True:
        if region == "HK":
            candidate = f"+8529{rng.randrange(10**7):07d}"
        else:
            candidate = f"+447{rng.randrange(10**9):09d}"
        parsed = phonenumbers.parse(candidate)
        if (
            phonenumbers.is_valid_number_for_region(parsed, region)
            and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        ):
            return candidate


# --- Scenarios -----------------------------------------------------------------------


def _policy(code: str) -> NumberPolicy:
    # An unsaved row: the lifecycle functions only read its timers.
    return NumberPolicy(code=code, **POLICIES[code])


def _simulate(spec: LineSpec, now: datetime) -> str | None:
    """The status the spec's history leads to at `now`, by the same pure
    functions the actions use; None if a step would be refused."""
    policy = _policy(spec.policy_code)
    assert spec.activated_at is not None
    valid_until = spec.activated_at + timedelta(days=policy.first_topup_days)
    for step in spec.steps:
        paid_at = step.at + PAY_DELAY
        for moment in (step.at, paid_at):
            if lifecycle.status_at(valid_until, policy, moment) == LineStatus.TERMINATED:
                return None
        valid_until = lifecycle.extend_validity(
            policy, valid_until, paid_at, step.days()
        ).valid_until
        if step.refund:
            refunded_at = step.at + REFUND_DELAY
            valid_until = max(refunded_at, valid_until - timedelta(days=step.days()))
    return lifecycle.status_at(valid_until, policy, now)


def _draw_steps(
    rng: random.Random,
    spec: LineSpec,
    now: datetime,
    count: int,
    code_window: tuple[datetime, datetime],
) -> list[Step]:
    assert spec.activated_at is not None
    span = (now - spec.activated_at).total_seconds() / 60
    if span < 60 * 24:
        return []
    minutes = sorted(rng.uniform(60 * 12, span - 60) for _ in range(count))
    plans = [p[0] for p in PLANS if p[1] == spec.currency]
    steps: list[Step] = []
    promo_used = False
    for offset in minutes:
        at = spec.activated_at + timedelta(minutes=int(offset))
        step = Step(at=at, channel=rng.choice(["web", "web", "web", "ivr", "ussd"]))
        roll = rng.random()
        if spec.currency == "HKD" and roll < 0.2:
            step.amount = rng.choice(FREE_AMOUNTS)
        else:
            step.plan_code = rng.choice(plans)
            in_window = code_window[0] <= at < code_window[1]
            if spec.currency == "HKD" and in_window and not promo_used and roll > 0.7:
                step.promo_code = PROMO_CODE
                promo_used = True
            elif roll < 0.3:
                step.by_staff = True
        steps.append(step)
    return steps


def _plan_history(
    rng: random.Random, spec: LineSpec, now: datetime, *, min_steps: int, with_refund: bool
) -> None:
    """Draw dates and top-ups until the history ends in the wanted status."""
    code_window = (
        now - timedelta(days=CODE_PROMO_WINDOW[0]),
        now + timedelta(days=CODE_PROMO_WINDOW[1]),
    )
    for _attempt in range(50_000):
        spec.activated_at = now - timedelta(
            minutes=rng.randrange(60 * 24 * 2, 60 * 24 * MAX_HISTORY_DAYS)
        )
        count = rng.choice([0, 0, 1, 1, 2, 3])
        spec.steps = _draw_steps(rng, spec, now, max(count, min_steps), code_window)
        if len(spec.steps) < min_steps:
            continue
        if with_refund:
            spec.steps[-1].refund = True
            spec.steps[-1].by_staff = False
        if _simulate(spec, now) == spec.target:
            spec.created_at = spec.activated_at - timedelta(days=rng.randint(1, 30))
            return
    raise RuntimeError(f"no demo history reaches {spec.target} for {spec.policy_code}")


def build_specs(now: datetime) -> tuple[list[LineSpec], list[str]]:
    """Every demo line and the pool's free numbers. Identifiers come from their
    own seeded stream, so they are the same whatever `now` is."""
    ids = random.Random(SEED)
    scenarios = random.Random(SEED + 1)
    seen: set[str] = set()

    def unique(make: Callable[..., str], *args: Any) -> str:
        while True:
            value = make(*args)
            if value not in seen:
                seen.add(value)
                return value

    specs: list[LineSpec] = []
    for policy_code, currency, region, wanted in GROUPS:
        for status, count in wanted.items():
            for index in range(count):
                spec = LineSpec(
                    iccid=unique(_iccid, ids),
                    msisdn=unique(_msisdn, ids, region),
                    policy_code=policy_code,
                    currency=currency,
                    target=status,
                )
                specs.append(spec)
                if status == LineStatus.INVENTORY:
                    # Some HK stock has no number yet: activation takes one from the pool.
                    spec.reserve_number = region != "HK" or index % 2 == 0
                    spec.created_at = now - timedelta(days=scenarios.randint(1, 60))
                    continue
                first_hk_active = policy_code == "hk-180" and status == "active" and index == 0
                first_uk_grace = policy_code == "uk-180" and status == "grace" and index == 0
                if first_hk_active or first_uk_grace:
                    spec.owner = DEMO_USERNAME
                refund = policy_code == "hk-180" and status == "active" and index == 1
                min_steps = (
                    2 if first_hk_active else 1 if (first_uk_grace or refund or index == 2) else 0
                )
                _plan_history(scenarios, spec, now, min_steps=min_steps, with_refund=refund)
                if status == "active" and index == 2:
                    spec.cancelled_order_at = spec.steps[0].at - timedelta(hours=2)
                spec.pending_order = first_hk_active
    pool = [unique(_msisdn, ids, "HK") for _ in range(POOL_SIZE)]
    return specs, pool


# --- Loading -------------------------------------------------------------------------


def _join_staff_roles() -> None:
    """The demo's support and finance staff, each in their back-office role,
    so every role can be tried from `make run`."""
    from django.contrib.auth.models import Group

    user_model = get_user_model()
    if not user_model.objects.filter(username=SUPPORT_USERNAME).exists():
        user_model.objects.create_user(
            SUPPORT_USERNAME, "support@example.com", SUPPORT_PASSWORD, is_staff=True
        )
    for username, role in STAFF_ROLES.items():
        group = Group.objects.filter(name=role).first()
        user = user_model.objects.filter(username=username).first()
        if group is not None and user is not None:
            user.groups.add(group)


def _users() -> dict[str, Any]:
    user_model = get_user_model()
    ops = user_model.objects.filter(username=OPS_USERNAME).first()
    if ops is None:
        ops = user_model.objects.create_superuser(OPS_USERNAME, "ops@example.com", OPS_PASSWORD)
    demo = user_model.objects.filter(username=DEMO_USERNAME).first()
    if demo is None:
        demo = user_model.objects.create_user(DEMO_USERNAME, DEMO_EMAIL, DEMO_PASSWORD)
    # The demo subscriber's address is known to be theirs: receipts reach it.
    do_mark_contacts_verified(demo)
    return {OPS_USERNAME: ops, DEMO_USERNAME: demo}


def _catalog(now: datetime) -> dict[str, Plan]:
    # get_or_create everywhere: staff edits to demo rows survive a second load.
    for code, values in POLICIES.items():
        NumberPolicy.objects.get_or_create(code=code, defaults=values)
    for order, (code, currency, price, credit, days, en, hans, hant) in enumerate(PLANS):
        Plan.objects.get_or_create(
            code=code,
            defaults={
                "currency": currency,
                "price": price,
                "credit": credit,
                "validity_days": days,
                "name_en": en,
                "name_zh_hans": hans,
                "name_zh_hant": hant,
                "sort_order": order,
            },
        )
    FreeAmountRule.objects.get_or_create(currency="HKD", defaults=FREE_AMOUNT_HKD)
    auto, _created = Promotion.objects.get_or_create(
        code=AUTO_PROMO,
        defaults={
            "name_en": "10% bonus credit on HKD plans",
            "name_zh_hans": "港币套餐充值送10%话费",
            "name_zh_hant": "港幣套餐增值送10%通話額",
            "currency": "HKD",
            "bonus_credit_percent": 10,
            "starts_at": now - timedelta(days=AUTO_PROMO_WINDOW[0]),
            "ends_at": now + timedelta(days=AUTO_PROMO_WINDOW[1]),
            "budget": AUTO_PROMO_BUDGET,
        },
    )
    _keep_running(auto, AUTO_PROMO_WINDOW, now)
    coded, _created = Promotion.objects.get_or_create(
        code=CODE_PROMO,
        defaults={
            "name_en": "KEEP30: 30 extra days",
            # Chinese text takes the full-width colon.
            "name_zh_hans": "KEEP30：加送30天有效期",  # noqa: RUF001
            "name_zh_hant": "KEEP30：加送30日有效期",  # noqa: RUF001
            "promo_code": PROMO_CODE,
            "currency": "HKD",
            "bonus_days": CODE_PROMO_DAYS,
            "per_line_limit": 1,
            "starts_at": now - timedelta(days=CODE_PROMO_WINDOW[0]),
            "ends_at": now + timedelta(days=CODE_PROMO_WINDOW[1]),
        },
    )
    _keep_running(coded, CODE_PROMO_WINDOW, now)
    return {plan.code: plan for plan in Plan.objects.filter(code__in=[p[0] for p in PLANS])}


def _keep_running(promo: Promotion, window: tuple[int, int], now: datetime) -> None:
    """Renew a demo promotion that is not running now for a good while yet
    (or whose budget is mostly spent); one that is keeps its dates, so a second
    load at the same time changes nothing."""
    changed = []
    running = promo.starts_at <= now and now + timedelta(days=PROMO_MIN_LEFT_DAYS) <= promo.ends_at
    if not running:
        promo.starts_at = now - timedelta(days=window[0])
        promo.ends_at = now + timedelta(days=window[1])
        changed += ["starts_at", "ends_at"]
    if promo.budget is not None and promo.budget - promo.budget_used < AUTO_PROMO_BUDGET // 4:
        promo.budget = promo.budget_used + AUTO_PROMO_BUDGET
        changed.append("budget")
    if changed:
        promo.save(update_fields=changed)


Op = tuple[datetime, int, Callable[[], None]]


class _Loader:
    """Turns specs into timed operations and runs them in time order across all
    lines, so receipts, ledger rows and audit entries read chronologically."""

    def __init__(self, now: datetime, users: dict[str, Any], plans: dict[str, Plan]) -> None:
        self.now = now
        self.users = users
        self.plans = plans
        self.policies = {p.code: p for p in NumberPolicy.objects.filter(code__in=list(POLICIES))}
        self.lines: dict[str, Line] = {}
        self.ops: list[Op] = []

    def add(self, at: datetime, op: Callable[[], None]) -> None:
        self.ops.append((at, len(self.ops), op))

    def run(self) -> None:
        for _at, _seq, op in sorted(self.ops, key=lambda item: (item[0], item[1])):
            op()

    def schedule(self, spec: LineSpec) -> None:
        assert spec.created_at is not None
        self.add(spec.created_at, partial(self._create, spec))
        if spec.activated_at is None:
            return
        self.add(spec.activated_at, partial(self._activate, spec))
        if spec.cancelled_order_at is not None:
            self.add(spec.cancelled_order_at, partial(self._cancelled_order, spec))
        for number, step in enumerate(spec.steps):
            key = f"demo:{spec.iccid}:{number}"
            if step.by_staff:
                self.add(step.at, partial(self._staff_topup, spec, step, key))
                continue
            self.add(step.at, partial(self._order, spec, step, key))
            self.add(step.at + PAY_DELAY, partial(self._pay, step, key))
            if step.refund:
                self.add(step.at + REFUND_DELAY, partial(self._refund, key))
        if spec.pending_order:
            self.add(self.now - timedelta(minutes=5), partial(self._pending_order, spec))

    def _create(self, spec: LineSpec) -> None:
        at = spec.created_at or self.now
        line = do_create_line(
            iccid=spec.iccid,
            policy=self.policies[spec.policy_code],
            currency=spec.currency,
            activation_code=f"1$smdp.example.com${spec.iccid[-10:]}",
            msisdn=spec.msisdn if spec.reserve_number else "",
            actor=ACTOR,
            now=at,
        )
        # Stock arrives before it is sold: date the row like its history.
        Line.objects.filter(pk=line.pk).update(created_at=at)
        if spec.owner:
            line = do_set_line_owner(line, self.users[spec.owner], actor=ACTOR, now=at)
        self.lines[spec.iccid] = line

    def _activate(self, spec: LineSpec) -> None:
        line = self.lines[spec.iccid]
        msisdn = "" if spec.reserve_number else spec.msisdn
        do_activate_line(line, msisdn=msisdn, actor=ACTOR, now=spec.activated_at)

    def _customer(self, spec: LineSpec) -> Any:
        return self.users[spec.owner] if spec.owner else None

    def _order_kwargs(self, step: Step) -> dict[str, Any]:
        if step.plan_code:
            return {"plan": self.plans[step.plan_code]}
        return {"amount": step.amount}

    def _order(self, spec: LineSpec, step: Step, key: str) -> None:
        do_create_order(
            line=self.lines[spec.iccid],
            channel=step.channel,
            idempotency_key=key,
            promo_code=step.promo_code,
            customer=self._customer(spec),
            actor=ACTOR,
            now=step.at,
            **self._order_kwargs(step),
        )

    def _pay(self, step: Step, key: str) -> None:
        # Paid at the sandbox gateway, which keeps its record of the capture,
        # then settled the way a webhook settles it: the demo's history
        # reconciles with the gateway's books without a mismatch.
        order = TopUpOrder.objects.get(idempotency_key=key)
        paid_at = step.at + PAY_DELAY
        attempt = PaymentAttempt.objects.create(
            order=order,
            provider=PROVIDER,
            amount=order.price,
            currency=order.currency,
            status=AttemptStatus.PENDING,
            created_at=step.at,
            updated_at=step.at,
        )
        sandbox.capture_at_gateway(attempt, paid_at)
        outcome = Outcome(
            SUCCEEDED,
            amount=order.price,
            currency=order.currency,
            reference=attempt.provider_reference,
        )
        settle(attempt, outcome, now=paid_at)

    def _refund(self, key: str) -> None:
        order = TopUpOrder.objects.get(idempotency_key=key)
        assert order.fulfilled_at is not None
        refunded_at = order.fulfilled_at - PAY_DELAY + REFUND_DELAY
        do_refund_order(
            order,
            reason="Charged twice by the card issuer",
            actor=f"staff:{OPS_USERNAME}",
            now=refunded_at,
        )
        # And given back at the gateway, as a refund at the provider does.
        attempt = PaymentAttempt.objects.get(order=order, status=AttemptStatus.SUCCEEDED)
        reference = sandbox.refund_at_gateway(attempt, attempt.amount, refunded_at)
        attempt.status = AttemptStatus.REFUNDED
        attempt.provider_data = {**attempt.provider_data, "refund": reference}
        attempt.updated_at = refunded_at
        attempt.save(update_fields=["status", "provider_data", "updated_at"])
        do_mark_refund_returned(order, now=refunded_at)

    def _staff_topup(self, spec: LineSpec, step: Step, key: str) -> None:
        do_admin_topup(
            line=self.lines[spec.iccid],
            staff=self.users[OPS_USERNAME],
            reason="Paid at the Mong Kok counter",
            idempotency_key=key,
            now=step.at + PAY_DELAY,
            **self._order_kwargs(step),
        )

    def _cancelled_order(self, spec: LineSpec) -> None:
        at = spec.cancelled_order_at
        assert at is not None
        plan = next(code for code, currency, *_rest in PLANS if currency == spec.currency)
        order = do_create_order(
            line=self.lines[spec.iccid],
            channel="web",
            idempotency_key=f"demo:{spec.iccid}:cancelled",
            plan=self.plans[plan],
            customer=self._customer(spec),
            actor=ACTOR,
            now=at,
        )
        do_cancel_order(order, reason="cancelled at checkout", now=at + timedelta(minutes=3))

    def _pending_order(self, spec: LineSpec) -> None:
        plan = next(code for code, currency, *_rest in PLANS if currency == spec.currency)
        do_create_order(
            line=self.lines[spec.iccid],
            channel="web",
            idempotency_key=f"demo:{spec.iccid}:pending",
            plan=self.plans[plan],
            customer=self._customer(spec),
            actor=ACTOR,
            now=self.now - timedelta(minutes=5),
        )


def capped_demo_line() -> Line | None:
    """The demo line that shows the validity-cap warning: the demo
    subscriber's active HKD line (its 365-day plans add fewer days)."""
    return (
        Line.objects.filter(owner__username=DEMO_USERNAME, currency="HKD", status=LineStatus.ACTIVE)
        .select_related("policy", "phone_number")
        .order_by("pk")
        .first()
    )


def _counts(query: Any, field_name: str) -> dict[str, int]:
    return {row[field_name]: row["n"] for row in query.values(field_name).annotate(n=Count("pk"))}


def load_demo(now: datetime | None = None) -> DemoSummary:
    """Load the demo operator. Safe to run again: what exists is left alone."""
    now = now or clock.now()
    summary = DemoSummary()
    with transaction.atomic():
        users = _users()
        plans = _catalog(now)
        specs, pool = build_specs(now)
        existing = set(
            Line.objects.filter(iccid__in=[s.iccid for s in specs]).values_list("iccid", flat=True)
        )
        taken = set(PhoneNumber.objects.filter(msisdn__in=pool).values_list("msisdn", flat=True))
        PhoneNumber.objects.bulk_create(
            [PhoneNumber(msisdn=msisdn) for msisdn in pool if msisdn not in taken]
        )
        loader = _Loader(now, users, plans)
        new = [spec for spec in specs if spec.iccid not in existing]
        for spec in new:
            loader.schedule(spec)
        loader.run()
        if new:
            # Persist what the back-dated histories lead to, as the periodic sweep would.
            sweep_lines(now)
        summary.created_lines = len(new)
        load_demo_announcements(now)
        load_demo_notifications(now)
        load_demo_vouchers(now)
    # Saving the demo card goes through the payment provider (the sandbox), and
    # provider calls never run inside a transaction.
    load_demo_autokeep(now)
    # Ordering eSIMs calls the SM-DP+ (here its simulator): outside a transaction too.
    load_demo_esim(now)
    with transaction.atomic():
        load_demo_reminders(now)
        agents = load_demo_agents(now, recorder=users[OPS_USERNAME])
        _join_staff_roles()
    # A support queue with a dispute refunded in part; outside a transaction,
    # as the refund asks the payment provider. The support member of staff is
    # read again for the role just given.
    load_demo_support(
        now,
        subscriber=users[DEMO_USERNAME],
        staff=get_user_model().objects.get(username=SUPPORT_USERNAME),
    )
    # Yesterday's settlement with the sandbox gateway, as the daily job
    # would have run it: the demo's books and the gateway's agree.
    if not SettlementRun.objects.filter(date=yesterday(now), provider="sandbox").exists():
        do_reconcile_day(yesterday(now), "sandbox", actor=ACTOR, now=now)
    if agents is not None:
        summary.agent_code = agents.active.code
        summary.agent_key_file = str(agents.key_file)

    demo_lines = Line.objects.filter(iccid__in=[s.iccid for s in specs])
    summary.lines_by_status = dict(Counter(demo_lines.values_list("status", flat=True)))
    summary.numbers_by_status = _counts(PhoneNumber.objects.all(), "status")
    summary.orders_by_status = _counts(TopUpOrder.objects.filter(line__in=demo_lines), "status")
    summary.policies = NumberPolicy.objects.count()
    summary.plans = Plan.objects.count()
    summary.promotions = Promotion.objects.count()
    return summary
