"""The simulation loop: subscribers on a moving clock, through the real
actions and jobs.

Every `step` the clock moves on and the periodic jobs run at that moment,
as the scheduler would run them: the lifecycle sweep, the reminder scan,
auto-keep, then notification delivery. The messages delivered in the step are
read back from the outbox and given to their subscribers, who may plan a
top-up (or a card update) some hours or days later; those run at their own
time, in time order, between two steps. Nothing is written except through the
apps' actions, so the books, histories and outbox are what production would
hold after the same years.
"""

from __future__ import annotations

import heapq
import logging
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from stdnum import luhn

from leb.common import clock

from . import deps
from .config import Config
from .population import (
    AUTOKEEP,
    CARD_DECLINES,
    CARD_EXPIRES,
    DECLINING_CARD,
    EXPIRY_REMINDER,
    GOOD_CARD,
    GROUPS,
    REMINDER_KINDS,
    Subscriber,
    choose_plan_code,
    draw_population,
    react,
)
from .report import Goal, GroupReport, Report

POLICY_CODE = "sim-hk-180"
CURRENCY = "HKD"
ICCID_PREFIX = "8985209"
# Simulated numbers: +852 56xx xxxx, a block no demo or test uses.
MSISDN_PREFIX = "+85256"
PROVIDER = "sandbox"
ACTOR = "simulation"
# The simulation's own catalog (HK-style 保号 plans).
PLANS = [
    ("sim-hk-30-90", 3000, 90, "HK$30 · 90 days", "30港元 · 90天", "港幣30元 · 90日"),
    ("sim-hk-50-180", 5000, 180, "HK$50 · 180 days", "50港元 · 180天", "港幣50元 · 180日"),
    ("sim-hk-100-365", 10000, 365, "HK$100 · 365 days", "100港元 · 365天", "港幣100元 · 365日"),
]
POLICY = {
    "name": "Simulation: HK 180-day card (stacking, 365-day cap)",
    "number_prefix": "+852",
    "first_topup_days": 30,
    "grace_days": 30,
    "suspension_days": 60,
    "quarantine_days": 90,
    "max_validity_days": 365,
    "extension_rule": "stack",
    "reminder_offsets": [30, 7, 1],
    "restore_fee": 1000,
}


@dataclass(order=True)
class _Act:
    at: datetime
    order: int
    index: int = field(compare=False)
    what: str = field(compare=False)


def _iccid(n: int) -> str:
    body = f"{ICCID_PREFIX}{n:011d}"
    return body + luhn.calc_check_digit(body)


def _msisdn(n: int) -> str:
    return f"{MSISDN_PREFIX}{n:06d}"


class Simulation:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.deps = deps.load()
        self.start = config.start
        self.end = config.start + timedelta(days=round(365.25 * config.years))
        self.step = timedelta(hours=config.step_hours)
        self.people: list[Subscriber] = []
        self.by_line: dict[int, Subscriber] = {}
        self.queue: list[_Act] = []
        self.sequence = 0
        self.events: Counter[str] = Counter()
        self.errors: list[str] = []
        self.plans: dict[str, Any] = {}
        self.codes_by_days: list[str] = []
        self.optimum: dict[int, tuple[bool, int, str]] = {}
        self.watermark = 0
        self.last_check = config.start - timedelta(days=400)
        self.interrupted_at: datetime | None = None
        self.autokeep_batch = int(getattr(settings, "AUTOKEEP_BATCH_SIZE", 200))

    # --- setup ------------------------------------------------------------------

    def seed_world(self) -> None:
        from leb.catalog.models import Plan
        from leb.lines.models import NumberPolicy

        self.policy, _created = NumberPolicy.objects.get_or_create(
            code=POLICY_CODE, defaults=POLICY
        )
        for order, (code, price, days, en, hans, hant) in enumerate(PLANS):
            self.plans[code], _created = Plan.objects.get_or_create(
                code=code,
                defaults={
                    "currency": CURRENCY,
                    "price": price,
                    "credit": price,
                    "validity_days": days,
                    "name_en": en,
                    "name_zh_hans": hans,
                    "name_zh_hant": hant,
                    "sort_order": 100 + order,
                },
            )
        self.codes_by_days = [code for code, *_rest in PLANS]

    def seed_lines(self, progress: Any) -> None:
        """Each subscriber bought their card some time before the start and
        topped it up at once, so validities at the start are spread out."""
        from leb.accounts.actions import do_register_user
        from leb.lines.actions import do_activate_line, do_create_line, do_set_line_owner

        self.people = draw_population(
            self.config.lines, self.config.shares, self.rng, tuple(self.codes_by_days[1:])
        )
        ops = []
        for person in self.people:
            code = self.codes_by_days[1] if self.rng.random() < 0.5 else self.codes_by_days[2]
            days = self.plans[code].validity_days
            bought = self.start - timedelta(
                days=self.rng.uniform(0, days + 20), hours=self.rng.uniform(0, 10)
            )
            ops.append((bought, person.index, code))
        ops.sort()
        # Simulated subscribers never sign in: a fast password hasher keeps
        # seeding about the simulation, not about Argon2.
        with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
            for bought, index, code in ops:
                person = self.people[index]
                with clock.frozen(bought):
                    line = do_create_line(
                        iccid=_iccid(index),
                        policy=self.policy,
                        currency=CURRENCY,
                        activation_code=f"1$smdp.example.com$SIM-{index}",
                        msisdn=_msisdn(index),
                        actor=ACTOR,
                        now=bought,
                    )
                    line = do_activate_line(line, actor=ACTOR, now=bought)
                    if person.has_account:
                        user = do_register_user(
                            email=f"sim{index}@example.com",
                            phone="",
                            password=f"sim-{index}-{self.config.seed}",
                            language=person.language,
                            # Simulated subscribers have confirmed their address.
                            verified=True,
                        )
                        person.user_id = user.pk
                        line = do_set_line_owner(line, user, actor=ACTOR, now=bought)
                    person.line_id = line.pk
                    self.by_line[line.pk] = person
                    self._pay(line, self.plans[code], bought, f"sim:{index}:first")
                progress.update(1)

    def seed_autokeep(self) -> None:
        """Auto-keep subscribers save a card and set their rule at the start."""
        from leb.lines.models import Line

        if not self.deps.autokeep:
            return
        exp_soon = timezone.localtime(self.start + timedelta(days=240))
        for person in self.people:
            if person.group != AUTOKEEP:
                continue
            line = Line.objects.select_related("owner", "policy").get(pk=person.line_id)
            if person.card == CARD_DECLINES:
                number, month, year = DECLINING_CARD, 12, exp_soon.year + 5
            elif person.card == CARD_EXPIRES:
                number, month, year = GOOD_CARD, exp_soon.month, exp_soon.year
            else:
                number, month, year = GOOD_CARD, 12, exp_soon.year + 5
            with clock.frozen(self.start):
                method = self.deps.save_card(line.owner, number, month, year, self.start)
                self.deps.set_rule(
                    line=line,
                    method=method,
                    mode=person.kind,
                    plan=self.plans[person.plan_code or self.codes_by_days[2]],
                    days_before=person.days_before,
                    until=None,
                    now=self.start,
                )

    def plan_optimum(self) -> None:
        """The planner's cheapest way to keep each line from the start to the end."""
        from leb.lines.models import Line

        if not self.deps.planner:
            return
        until = timezone.localdate(self.end)
        lines = Line.objects.filter(policy=self.policy).select_related("policy", "phone_number")
        for line in lines.iterator(chunk_size=500):
            plan = self.deps.keep_plan(line, until, now=self.start)
            self.optimum[line.pk] = (plan.feasible, plan.total, plan.currency)

    # --- actions of the subscribers ------------------------------------------

    def _pay(self, line: Any, plan: Any, at: datetime, key: str) -> Any:
        from leb.topups.actions import do_create_order, do_fulfil_order, do_mark_paid

        order = do_create_order(line=line, channel="web", plan=plan, idempotency_key=key, now=at)
        order = do_mark_paid(
            order,
            amount=order.price,
            currency=order.currency,
            provider=PROVIDER,
            reference=f"sim-{order.pk}",
            now=at,
        )
        return do_fulfil_order(order, now=at)

    def _topup(self, person: Subscriber, at: datetime) -> None:
        from leb.lines import lifecycle
        from leb.lines.models import Line, LineStatus
        from leb.topups.actions import OrderError
        from leb.topups.models import OrderStatus

        line = Line.objects.select_related("policy").get(pk=person.line_id)
        status = lifecycle.effective_status(line, at)
        if status == LineStatus.TERMINATED:
            person.too_late += 1
            self.events["too_late"] += 1
            return
        plan = self.plans[choose_plan_code(person, self.codes_by_days, self.rng)]
        person.topups += 1
        try:
            order = self._pay(line, plan, at, f"sim:{person.index}:{person.topups}")
        except (OrderError, ValidationError) as exc:
            self.errors.append(f"top-up of line {line.pk} at {at:%Y-%m-%d %H:%M}: {exc}")
            return
        if order.status != OrderStatus.FULFILLED:
            self.errors.append(f"top-up of line {line.pk} ended {order.status}")
            return
        self.events["topups"] += 1
        if status in (LineStatus.GRACE, LineStatus.SUSPENDED):
            person.late_topups += 1

    def _update_card(self, person: Subscriber, at: datetime) -> None:
        from leb.lines.models import Line

        line = Line.objects.select_related("owner", "policy").get(pk=person.line_id)
        year = timezone.localtime(at).year + 4
        method = self.deps.save_card(line.owner, GOOD_CARD, 12, year, at)
        self.deps.set_rule(
            line=line,
            method=method,
            mode=person.kind,
            plan=self.plans[person.plan_code or self.codes_by_days[2]],
            days_before=person.days_before,
            until=None,
            now=at,
        )
        person.card_fixed = True
        person.fixes.append(at.isoformat())
        self.events["card_updates"] += 1

    def _schedule(self, person: Subscriber, at: datetime, what: str) -> None:
        self.sequence += 1
        heapq.heappush(self.queue, _Act(at, self.sequence, person.index, what))

    def _run_due_acts(self, until: datetime) -> None:
        while self.queue and self.queue[0].at < until:
            act = heapq.heappop(self.queue)
            person = self.people[act.index]
            person.busy_until = None
            with clock.frozen(act.at):
                if act.what == "card":
                    self._update_card(person, act.at)
                else:
                    self._topup(person, act.at)

    # --- the jobs -----------------------------------------------------------------

    def _jobs(self, now: datetime) -> None:
        from leb.lines.actions import sweep_lines

        swept = sweep_lines(now)
        self.events["transitions"] += swept.transitions
        if self.deps.reminders:
            scanned = self.deps.scan_reminders(now)
            self.events["reminders_queued"] += deps.count_of(scanned, "sent")
        if self.deps.autokeep:
            # The job takes a batch of due rules a run; the scheduler runs it
            # every few minutes, so within one step it runs until none is due.
            while True:
                ran = self.deps.run_autokeep(now)
                self.events["autokeep_charges"] += deps.count_of(ran, "started")
                if deps.count_of(ran, "checked") < self.autokeep_batch:
                    break
        if self.deps.notifications:
            with override_settings(
                SMS_BACKEND="leb.sms.backends.locmem.SmsBackend",
                EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
            ):
                self.deps.deliver_now(now)
            deps.clear_outboxes()
            self._read_delivered(now)

    def _read_delivered(self, now: datetime) -> None:
        """Give each subscriber the messages delivered to them since the last
        step (one per message, whatever the channels), in delivery order."""
        rows, self.watermark = deps.delivered_since(self.watermark, self.last_check, now)
        self.last_check = now
        seen: set[tuple[int, str, str]] = set()
        for line_id, kind, dedupe_key, sent_at, context in rows:
            person = self.by_line.get(line_id)
            if person is None or (line_id, kind, dedupe_key) in seen:
                continue
            seen.add((line_id, kind, dedupe_key))
            person.messages += 1
            self.events["messages_read"] += 1
            if person.busy_until is not None and person.busy_until > sent_at:
                continue
            days_left, last_offset = 0.0, False
            if kind in REMINDER_KINDS and person.group != AUTOKEEP:
                days_left, last_offset = self._days_left(person, kind, context, sent_at)
            reaction = react(
                person, kind, days_left=days_left, last_offset=last_offset, rng=self.rng
            )
            if reaction is None:
                continue
            at = max(sent_at + reaction.delay, now)
            person.busy_until = at
            self._schedule(person, at, reaction.what)

    def _days_left(
        self, person: Subscriber, kind: str, context: dict[str, Any], sent_at: datetime
    ) -> tuple[float, bool]:
        valid_until = deps.context_datetime(context, "valid_until")
        if valid_until is None:
            from leb.lines.models import Line

            valid_until = Line.objects.values_list("valid_until", flat=True).get(pk=person.line_id)
        days_left = (valid_until - sent_at).total_seconds() / 86400 if valid_until else 0.0
        offsets = self.policy.reminder_offsets or [1]
        offset = context.get("offset_days") if isinstance(context, dict) else None
        if isinstance(offset, int):
            last_offset = kind == EXPIRY_REMINDER and offset == min(offsets)
        else:
            last_offset = kind == EXPIRY_REMINDER and days_left <= min(offsets) + 0.5
        return days_left, last_offset

    # --- the run --------------------------------------------------------------------

    def run(self) -> Report:
        from tqdm import tqdm

        from leb.lines.models import Line

        config = self.config
        seeded_at = time.monotonic()
        self.seed_world()
        with tqdm(
            total=config.lines,
            desc="seeding lines",
            unit="line",
            disable=not config.progress,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        ) as bar:
            self.seed_lines(bar)
        with clock.frozen(self.start):
            self.seed_autokeep()
            self.plan_optimum()
        self.watermark = 0
        seed_seconds = time.monotonic() - seeded_at

        started = time.monotonic()
        steps = 0
        with (
            clock.frozen(self.start),
            tqdm(
                total=(self.end - self.start) // self.step,
                desc="simulating",
                unit="step",
                disable=not config.progress,
                mininterval=1.0 if sys.stderr.isatty() else 30.0,
            ) as bar,
        ):
            now = self.start
            try:
                while now < self.end:
                    self._jobs(now)
                    self._run_due_acts(min(now + self.step, self.end))
                    steps += 1
                    clock.advance(self.step)
                    now = now + self.step
                    bar.update(1)
                    if steps % 30 == 0:
                        bar.set_postfix(day=timezone.localdate(now).isoformat(), refresh=False)
                # The last jobs at the end: transitions due by then are persisted.
                self._jobs(self.end)
            except KeyboardInterrupt:
                # Interrupted (SIGINT): report what was simulated so far.
                self.interrupted_at = now
        wall = time.monotonic() - started

        terminated = dict(
            Line.objects.filter(policy=self.policy, status="terminated").values_list(
                "pk", "terminated_at"
            )
        )
        return self.report(seed_seconds, wall, steps, terminated)

    # --- the report -------------------------------------------------------------------

    def report(
        self, seed_seconds: float, wall: float, steps: int, terminated: dict[int, datetime | None]
    ) -> Report:
        from leb.ledger.queries import verify_ledger
        from leb.topups.models import OrderStatus, TopUpOrder

        config = self.config
        groups = {name: GroupReport(group=name) for name in GROUPS}
        for person in self.people:
            group = groups[person.group]
            group.lines += 1
            group.topups += person.topups
            group.late_topups += person.late_topups
            group.too_late += person.too_late
            group.card_updates += len(person.fixes)
            group.messages += person.messages
            person.lost = person.line_id in terminated

        received = deps.reminders_before(terminated) if self.deps.notifications else {}
        spend: dict[int, int] = defaultdict(int)
        for line_id, price in TopUpOrder.objects.filter(
            line__policy=self.policy,
            status=OrderStatus.FULFILLED,
            fulfilled_at__gte=self.start,
            fulfilled_at__lt=(self.interrupted_at or self.end) + timedelta(seconds=1),
        ).values_list("line_id", "price"):
            spend[line_id] += price
        for person in self.people:
            group = groups[person.group]
            paid = spend.get(person.line_id, 0)
            group.spend[CURRENCY] = group.spend.get(CURRENCY, 0) + paid
            if person.lost:
                group.lost += 1
                group.reminders_before_loss.append(received.get(person.line_id, 0))
                continue
            group.kept += 1
            planned = self.optimum.get(person.line_id)
            if planned is None:
                continue
            feasible, total, currency = planned
            if not feasible:
                group.infeasible_plans += 1
                continue
            group.kept_planned += 1
            group.kept_spend[currency] = group.kept_spend.get(currency, 0) + paid
            group.kept_optimum[currency] = group.kept_optimum.get(currency, 0) + total

        goals = []
        autokeep = groups[AUTOKEEP]
        if self.deps.autokeep:
            goals.append(
                Goal(
                    "0 auto-keep lines lost",
                    autokeep.lost == 0,
                    f"{autokeep.lost} of {autokeep.lines} lost",
                )
            )
        lost = [n for g in groups.values() for n in g.reminders_before_loss]
        if self.deps.notifications and self.deps.reminders:
            short = sum(1 for n in lost if n < 3)
            goals.append(
                Goal(
                    "every lost line got >= 3 reminders",
                    short == 0,
                    f"{len(lost)} lost, {short} with fewer than 3; "
                    f"min {min(lost) if lost else '-'}",
                )
            )
        verify = verify_ledger()
        report = Report(
            lines=config.lines,
            years=config.years,
            seed=config.seed,
            step_hours=config.step_hours,
            database=config.database or connection.vendor,
            start=self.start.isoformat(),
            end=self.end.isoformat(),
            groups=groups,
            goals=goals,
            not_covered=self.deps.missing(),
            seed_seconds=seed_seconds,
            wall_seconds=wall,
            steps=steps,
            events=dict(self.events),
            notifications=deps.notification_counts() if self.deps.notifications else {},
            delivered_reminders=deps.delivered_reminder_count() if self.deps.notifications else 0,
            ledger_ok=verify.ok,
            ledger_summary=(
                f"{verify.accounts:,} accounts, {verify.transfers:,} transfers, "
                f"totals {verify.totals}"
            ),
            ledger_problems=list(verify.problems),
            errors=self.errors[:50],
            interrupted_at=self.interrupted_at.isoformat() if self.interrupted_at else "",
        )
        if len(self.errors) > 50:
            report.errors.append(f"... and {len(self.errors) - 50} more")
        return report


def run_simulation(config: Config) -> Report:
    """Run in this process on the configured database (tests use this on
    the test database; the command in a child process on a scratch one)."""
    return Simulation(config).run()


def run_in_child(config: Config) -> Report:
    """The body of the spawned process that Django was set up for the
    scratch database (see leb.simulation.scratch). The jobs' routine info
    logs would drown the progress bar; warnings still show."""
    logging.getLogger("leb").setLevel(logging.WARNING)
    return run_simulation(config)
