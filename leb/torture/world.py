"""The small world a torture run works on, made through the real actions:
a number policy, two plans, a promotion whose budget runs out, lines in
every state that matters (active, close to expiry, in grace), auto-keep
subscribers with saved sandbox cards, a voucher batch and an agent whose
float runs out.

Runs in a process that Django was set up for the torture database.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from stdnum import luhn

from leb.common import clock

CURRENCY = "HKD"
POLICY_CODE = "torture"
SMALL_PLAN = "torture-30"
PROMO_PLAN = "torture-50"
PROMOTION = "torture-budget"
PROMOTION_DISCOUNT = 1000  # HK$10 off the promoted plan
ICCID_PREFIX = "8985277"
# +852 57xx xxxx: a block no demo, test or simulation uses.
MSISDN_PREFIX = "+85257"
ACTOR = "torture"
AGENT_DISCOUNT = Decimal("8")
AUTOKEEP_CARD = "4242424242424242"


@dataclass
class World:
    """What the operations need to find things again (picklable)."""

    line_ids: list[int]
    msisdns: list[str]
    autokeep_line_ids: list[int]
    pins: list[str]
    agent_id: int
    agent_float: int
    promotion_budget: int
    seeded_at: str
    plans: list[str] = field(default_factory=lambda: [SMALL_PLAN, PROMO_PLAN])


def iccid(index: int) -> str:
    body = f"{ICCID_PREFIX}{index:011d}"
    return body + luhn.calc_check_digit(body)


def msisdn(index: int) -> str:
    return f"{MSISDN_PREFIX}{index:06d}"


def _staff(username: str) -> Any:
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def ensure_catalog(now: datetime, *, promotion_uses: int) -> None:
    from leb.catalog.models import Plan, Promotion
    from leb.ledger.actions import system_account
    from leb.ledger.models import AccountKind
    from leb.lines.models import NumberPolicy

    for kind, name in (
        (AccountKind.CLEARING, "sandbox"),
        (AccountKind.SUSPENSE, ""),
        (AccountKind.PROMOTION_EXPENSE, ""),
        (AccountKind.REVENUE, "topup"),
    ):
        system_account(kind, CURRENCY, name)
    NumberPolicy.objects.get_or_create(
        code=POLICY_CODE,
        defaults={
            "name": "Torture: HK 90-day card, no cap",
            "number_prefix": "+852",
            "first_topup_days": 30,
            "grace_days": 30,
            "suspension_days": 60,
            "quarantine_days": 90,
            "max_validity_days": None,
            "extension_rule": "stack",
            "reminder_offsets": [30, 7, 1],
        },
    )
    plans = {}
    for code, price, days in ((SMALL_PLAN, 3000, 90), (PROMO_PLAN, 5000, 180)):
        plans[code], _created = Plan.objects.get_or_create(
            code=code,
            defaults={
                "currency": CURRENCY,
                "price": price,
                "credit": price,
                "validity_days": days,
                "name_en": f"Torture {code}",
                "name_zh_hans": f"Torture {code}",
                "name_zh_hant": f"Torture {code}",
                "sort_order": 900,
            },
        )
    if promotion_uses:
        promotion, created = Promotion.objects.get_or_create(
            code=PROMOTION,
            defaults={
                "name_en": "Torture: HK$10 off while the budget lasts",
                "name_zh_hans": "Torture",
                "name_zh_hant": "Torture",
                "promo_code": "",
                "currency": CURRENCY,
                "discount_fixed": PROMOTION_DISCOUNT,
                "starts_at": now - timedelta(days=400),
                "ends_at": now + timedelta(days=3650),
                "budget": promotion_uses * PROMOTION_DISCOUNT,
            },
        )
        if created:
            promotion.plans.set([plans[PROMO_PLAN]])


def make_lines(count: int, now: datetime, *, first: int = 0) -> list[int]:
    """`count` activated lines: a quarter past their first-top-up window (in
    grace now, for the sweep), the rest topped up 70 to 89 days ago on the
    90-day plan, so their validity ends within three weeks (reminders)."""
    from leb.catalog.models import Plan
    from leb.lines.actions import do_activate_line, do_create_line
    from leb.lines.models import NumberPolicy
    from leb.topups.actions import do_admin_topup

    policy = NumberPolicy.objects.get(code=POLICY_CODE)
    plan = Plan.objects.get(code=SMALL_PLAN)
    staff = _staff("torture-staff")
    ids = []
    for index in range(first, first + count):
        if index % 4 == 0:
            activated = now - timedelta(days=40, minutes=index)
        else:
            activated = now - timedelta(days=70 + index % 20, minutes=index)
        with clock.frozen(activated):
            line = do_create_line(
                iccid=iccid(index),
                policy=policy,
                currency=CURRENCY,
                activation_code=f"1$smdp.example.com$TORTURE-{index}",
                msisdn=msisdn(index),
                actor=ACTOR,
                now=activated,
            )
            line = do_activate_line(line, actor=ACTOR, now=activated)
            if index % 4:
                do_admin_topup(
                    line=line,
                    staff=staff,
                    reason="torture: the line's first top-up",
                    idempotency_key=f"torture:first:{index}",
                    plan=plan,
                    now=activated,
                )
        ids.append(line.pk)
    return ids


def enrol_autokeep(line_ids: list[int], now: datetime) -> None:
    """Each line gets an owner with a saved sandbox card and a threshold rule
    that is due now (its validity ends within 30 days)."""
    from django.test import override_settings

    from leb.accounts.actions import do_register_user
    from leb.autokeep.actions import do_save_sandbox_method, do_set_rule
    from leb.catalog.models import Plan
    from leb.lines.actions import do_set_line_owner
    from leb.lines.models import Line

    plan = Plan.objects.get(code=SMALL_PLAN)
    expiry = now + timedelta(days=3 * 365)
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        for line_id in line_ids:
            line = Line.objects.get(pk=line_id)
            user = do_register_user(
                email=f"torture{line_id}@example.com",
                phone="",
                password=f"torture-{line_id}-pass-phrase",
                language="en",
                verified=True,
            )
            line = do_set_line_owner(line, user, actor=ACTOR, now=now)
            method = do_save_sandbox_method(user, AUTOKEEP_CARD, expiry.month, expiry.year, now=now)
            do_set_rule(
                user=user,
                line=line,
                mode="threshold",
                method=method,
                plan=plan,
                days_before=30,
                now=now,
            )


def make_vouchers(count: int, now: datetime) -> list[str]:
    """An active batch of `count` vouchers for the 90-day plan; their PINs."""
    from leb.catalog.models import Plan
    from leb.vouchers.actions import do_activate_batch, do_distribute_batch, do_generate_batch
    from leb.vouchers.models import Distributor

    distributor, _created = Distributor.objects.get_or_create(
        code="torture", defaults={"name": "Torture distributor"}
    )
    with tempfile.TemporaryDirectory(prefix="leb-torture-") as folder:
        out = Path(folder) / "vouchers.csv"
        made = do_generate_batch(
            code="TORTURE",
            distributor=distributor,
            quantity=count,
            expires_on=(now + timedelta(days=365)).date(),
            out=out,
            plan=Plan.objects.get(code=SMALL_PLAN),
            luhn=True,
            actor=ACTOR,
            now=now,
        )
        with out.open(newline="", encoding="utf-8") as stream:
            pins = [row["pin"] for row in csv.DictReader(stream)]
    batch = do_distribute_batch(made.batch, actor=ACTOR, now=now)
    do_activate_batch(batch, actor=ACTOR, now=now)
    return pins


def make_agent(sales: int, now: datetime) -> tuple[int, int]:
    """An agent whose float pays for `sales` sales of the 90-day plan."""
    from leb.agents.actions import (
        do_approve_deposit,
        do_create_agent,
        do_record_deposit,
        wholesale_price,
    )
    from leb.catalog.models import Plan

    agent = do_create_agent(
        actor=ACTOR,
        now=now,
        legal_name="Torture Agent Ltd",
        display_name="Torture Agent",
        region="HK",
        currency=CURRENCY,
        discount_percent=AGENT_DISCOUNT,
    )
    plan = Plan.objects.get(code=SMALL_PLAN)
    amount = sales * wholesale_price(agent, plan.code, plan.price)
    deposit = do_record_deposit(
        agent,
        amount=amount,
        currency=CURRENCY,
        bank_reference="TORTURE-FLOAT",
        staff=_staff("torture-recorder"),
        now=now,
    )
    do_approve_deposit(deposit, staff=_staff("torture-approver"), now=now)
    return agent.pk, amount


def seed_race_world(
    lines: int, autokeep: int, vouchers: int, agent_sales: int, promotion_uses: int
) -> World:
    from leb.lines.models import Line

    now = clock.now()
    ensure_catalog(now, promotion_uses=promotion_uses)
    line_ids = make_lines(lines, now)
    # Auto-keep lines are among those close to expiry (index % 4 != 0).
    candidates = [line_id for i, line_id in enumerate(line_ids) if i % 4]
    autokeep_ids = candidates[:autokeep]
    enrol_autokeep(autokeep_ids, now)
    pins = make_vouchers(vouchers, now)
    agent_id, agent_float = make_agent(agent_sales, now)
    numbers = dict(Line.objects.filter(pk__in=line_ids).values_list("pk", "phone_number__msisdn"))
    return World(
        line_ids=line_ids,
        msisdns=[numbers[line_id] for line_id in line_ids],
        autokeep_line_ids=autokeep_ids,
        pins=pins,
        agent_id=agent_id,
        agent_float=agent_float,
        promotion_budget=promotion_uses * PROMOTION_DISCOUNT,
        seeded_at=now.isoformat(),
    )


def seed_crash_world(lines: int) -> list[str]:
    """The crash run's lines (no promotion: every top-up is the same
    transaction shape); returns their numbers."""
    from leb.lines.models import Line

    now = clock.now()
    ensure_catalog(now, promotion_uses=0)
    line_ids = make_lines(lines, now)
    return list(
        Line.objects.filter(pk__in=line_ids)
        .order_by("pk")
        .values_list("phone_number__msisdn", flat=True)
    )
