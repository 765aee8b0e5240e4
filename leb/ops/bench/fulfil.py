"""Top-up throughput: orders per second, where an order is what a paying
subscriber causes: do_create_order, then do_pay_and_fulfil (payment and
fulfilment in one transaction, as every channel does once the money is
confirmed).

Two phases on the same seeded lines, one order per line per phase:
- spread: a plan no promotion applies to, so orders share no row but the
  receipt counter;
- hot: a plan an automatic promotion with a budget applies to, so every order
  also reserves from, and uses, that one promotion's budget.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import OperationalError, connection
from stdnum import luhn

from leb.catalog.models import Plan, Promotion
from leb.common import clock
from leb.ledger.actions import system_account
from leb.ledger.models import AccountKind, TransferGroup
from leb.ledger.queries import verify_ledger
from leb.lines.actions import do_activate_line, do_create_line
from leb.lines.models import Line, LineStatus, NumberPolicy
from leb.topups.actions import do_create_order, do_pay_and_fulfil
from leb.topups.models import OrderStatus, TopUpOrder

from . import procs, replay

CURRENCY = "HKD"
CHANNEL = "web"
PROVIDER = "sandbox"
POLICY_CODE = "bench"
SPREAD_PLAN = "bench-spread"
HOT_PLAN = "bench-hot"
HOT_PROMOTION = "bench-hot"
PHASES = {"spread": SPREAD_PLAN, "hot": HOT_PLAN}
ICCID_PREFIX = "8985299"
# Lines 0-4 are not timed: one warms up (system accounts, receipt counter)
# and spaces the captures, two of the others are captured for the raw replay.
EXTRA_LINES = 5
RETRIES = 3


def iccid(index: int) -> str:
    body = f"{ICCID_PREFIX}{index:011d}"
    return body + luhn.calc_check_digit(body)


def msisdn(index: int) -> str:
    # +852 61xx xxxx, +852 63xx xxxx ...: Hong Kong mobile ranges, all valid.
    prefix = ("61", "63", "64", "65", "69")[index // 1_000_000]
    return f"+852{prefix}{index % 1_000_000:06d}"


def ensure_catalog(now: datetime) -> None:
    """The policy, the two plans, the automatic promotion (hot plan only) and
    the operator's accounts, which exist before any line's wallet."""
    system_account(AccountKind.CLEARING, CURRENCY, PROVIDER)
    system_account(AccountKind.SUSPENSE, CURRENCY)
    system_account(AccountKind.PROMOTION_EXPENSE, CURRENCY)
    NumberPolicy.objects.get_or_create(
        code=POLICY_CODE,
        defaults={
            "name": "Benchmark",
            "first_topup_days": 30,
            "grace_days": 30,
            "suspension_days": 60,
            "quarantine_days": 90,
        },
    )
    plans = {}
    for code in (SPREAD_PLAN, HOT_PLAN):
        plans[code], _created = Plan.objects.get_or_create(
            code=code,
            defaults={
                "name_en": code,
                "name_zh_hans": code,
                "name_zh_hant": code,
                "currency": CURRENCY,
                "price": 10_000,
                "credit": 10_000,
                "validity_days": 30,
            },
        )
    promotion, created = Promotion.objects.get_or_create(
        code=HOT_PROMOTION,
        defaults={
            "name_en": "Benchmark bonus",
            "name_zh_hans": "Benchmark bonus",
            "name_zh_hant": "Benchmark bonus",
            "promo_code": "",
            "currency": CURRENCY,
            "bonus_credit_percent": 10,
            "bonus_days": 3,
            "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=3650),
            "budget": 10**15,
        },
    )
    if created:
        promotion.plans.set([plans[HOT_PLAN]])


def seed_lines(first: int, count: int, now: datetime) -> int:
    """Lines first..first+count-1, created and activated through the actions.
    Lines that already exist are left as they are."""
    policy = NumberPolicy.objects.get(code=POLICY_CODE)
    wanted = [iccid(i) for i in range(first, first + count)]
    existing: set[str] = set()
    for begin in range(0, len(wanted), 500):
        existing.update(
            Line.objects.filter(iccid__in=wanted[begin : begin + 500]).values_list(
                "iccid", flat=True
            )
        )
    made = 0
    for index in range(first, first + count):
        if iccid(index) in existing:
            continue
        line = do_create_line(
            iccid=iccid(index),
            policy=policy,
            currency=CURRENCY,
            msisdn=msisdn(index),
            actor="bench",
            now=now,
        )
        do_activate_line(line, actor="bench", now=now)
        made += 1
    return made


def seed_job(job: tuple[int, int, str], start: Callable[[], None]) -> int:
    first, count, now = job
    start()
    return seed_lines(first, count, datetime.fromisoformat(now))


def seed_active_lines(
    lines: int, clients: int = 1, database_url: str | None = None, now: datetime | None = None
) -> list[int]:
    """Lines 0..lines-1 through the line actions (by `clients` processes
    when `database_url` is given); returns the ids of the first `lines`."""
    now = now or clock.now()
    chunks = procs.split(list(range(lines)), clients)
    jobs = [(chunk[0], len(chunk), now.isoformat()) for chunk in chunks if chunk]
    if database_url is None or clients == 1:
        procs.run_in_process(seed_job, jobs)
    else:
        connection.close()
        procs.run_workers(database_url, "leb.ops.bench.fulfil:seed_job", jobs)
    return bench_line_ids(lines)


def bench_line_ids(count: int) -> list[int]:
    return list(
        Line.objects.filter(iccid__startswith=ICCID_PREFIX, status=LineStatus.ACTIVE)
        .order_by("iccid")
        .values_list("pk", flat=True)[:count]
    )


def place_order(
    line_id: int,
    plan: Plan,
    phase: str,
    tag: str,
    now: datetime | None = None,
    before_each: Callable[[], None] = lambda: None,
) -> TopUpOrder:
    """One paid and fulfilled top-up, through the same actions every channel
    uses; `before_each` runs before each of the two (transactions)."""
    key = f"bench:{tag}:{phase}:{line_id}"
    before_each()
    order = do_create_order(
        line=Line(pk=line_id), channel=CHANNEL, idempotency_key=key, plan=plan, now=now
    )
    before_each()
    order = do_pay_and_fulfil(
        order,
        amount=order.price,
        currency=order.currency,
        provider=PROVIDER,
        reference=key,
        now=now,
    )
    if order.status != OrderStatus.FULFILLED:
        raise procs.BenchError(f"order {order.pk} ended {order.status}, not fulfilled")
    if (phase == "hot") != bool(order.quote["promotion_id"]):
        raise procs.BenchError(
            f"order {order.pk} in phase {phase}: promotion {order.quote['promotion_id']}"
        )
    return order


def order_job(job: dict[str, Any], start: Callable[[], None]) -> dict[str, Any]:
    """A client: its own connection, one order per line of its slice."""
    plan = Plan.objects.get(code=PHASES[job["phase"]])
    connection.ensure_connection()
    if job.get("warm_line") is not None:
        # A fresh process's first order loads templates, catalogs and lazily
        # imported code (a second or more): made on a line of its own before
        # the clock starts, so it is neither timed nor a latency.
        place_order(job["warm_line"], plan, job["phase"], f"{job['tag']}-warm")
    latencies: list[float] = []
    errors = retries = 0
    first_error = ""
    start()
    for line_id in job["line_ids"]:
        began = time.monotonic()
        for attempt in range(RETRIES + 1):
            try:
                place_order(line_id, plan, job["phase"], job["tag"])
                break
            except OperationalError as exc:
                # Deadlock or lock timeout: the actions are idempotent, so retry.
                if attempt < RETRIES:
                    retries += 1
                    continue
                errors += 1
                first_error = first_error or repr(exc)
            except Exception as exc:
                errors += 1
                first_error = first_error or repr(exc)
                break
        latencies.append(time.monotonic() - began)
    return {
        "errors": errors,
        "retries": retries,
        "latencies": latencies,
        "first_error": first_error,
    }


@dataclass
class PhaseResult:
    name: str
    orders: int
    errors: int
    retries: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


@dataclass
class RawResult:
    name: str
    orders: int
    seconds: float
    statements: int
    transactions: int
    untraced: int

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


@dataclass
class FulfilResult:
    vendor: str
    clients: int
    orders: int
    seed_seconds: float
    phases: list[PhaseResult] = field(default_factory=list)
    raw: list[RawResult] = field(default_factory=list)
    verify_ok: bool = False
    verify_summary: str = ""
    verify_problems: list[str] = field(default_factory=list)
    fulfilled: int = 0

    def phase(self, name: str) -> PhaseResult:
        return next(p for p in self.phases if p.name == name)


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def run_phase(
    phase: str,
    line_ids: list[int],
    clients: int,
    tag: str,
    database_url: str | None,
    warm_lines: list[int] | None = None,
) -> PhaseResult:
    """The phase's orders, one per line, by `clients` clients; each first
    makes one untimed order on its own line of `warm_lines`."""
    chunks = procs.split(line_ids, clients)
    warm = list(warm_lines or [])
    jobs = [
        {
            "line_ids": chunk,
            "phase": phase,
            "tag": tag,
            "warm_line": warm[number] if number < len(warm) else None,
        }
        for number, chunk in enumerate(chunks)
    ]
    if database_url is None:
        run = procs.run_in_process(order_job, jobs)
    else:
        connection.close()
        run = procs.run_workers(database_url, "leb.ops.bench.fulfil:order_job", jobs)
    latencies = [lat for result in run.results for lat in result["latencies"]]
    errors = sum(result["errors"] for result in run.results)
    return PhaseResult(
        name=phase,
        orders=len(line_ids) - errors,
        errors=errors,
        retries=sum(result["retries"] for result in run.results),
        seconds=run.seconds,
        p50_ms=statistics.median(latencies) * 1000 if latencies else 0.0,
        p95_ms=_percentile(latencies, 0.95),
        p99_ms=_percentile(latencies, 0.99),
        first_error=next((r["first_error"] for r in run.results if r["first_error"]), ""),
    )


def _identities(order: TopUpOrder) -> dict[str, Any]:
    line = Line.objects.get(pk=order.line_id)
    groups = dict(
        TransferGroup.objects.filter(
            idempotency_key__in=[f"{order.order_ref}:payment", f"{order.order_ref}:fulfil"]
        ).values_list("idempotency_key", "pk")
    )
    return {
        "line": line.pk,
        "wallet": line.wallet_id,
        "order": order.pk,
        "public_uuid": order.public_id,
        "public_hex": order.public_id.hex,
        "public_str": str(order.public_id),
        "group_payment": groups[f"{order.order_ref}:payment"],
        "group_fulfil": groups[f"{order.order_ref}:fulfil"],
        "receipt": order.receipt_number,
    }


def capture(phase: str, spare: list[int], tag: str) -> replay.Template:
    """One order's statements in `phase`, captured twice to tell constants from
    ids. Orders on spare[0] between and after the two make order and ledger
    group ids move by other steps than line and wallet ids; if two ids still
    move in step, one more spacer order separates them."""
    plan = Plan.objects.get(code=PHASES[phase])
    now = clock.now()
    wallets = dict(Line.objects.filter(pk__in=spare).values_list("pk", "wallet_id"))
    # A line whose id equals its wallet's would make the two indistinguishable.
    pair = [pk for pk in spare[1:] if wallets[pk] != pk][:2]
    for spacers in range(1, 4):
        captures = []
        for line_id in pair:
            with replay.recording() as log:
                order = place_order(
                    line_id,
                    plan,
                    phase,
                    f"{tag}-capture{spacers}",
                    now=now,
                    before_each=partial(replay.mark, log),
                )
            captures.append((log, _identities(order)))
            for number in range(spacers):
                place_order(
                    spare[0], plan, phase, f"{tag}-spacer{spacers}-{line_id}-{number}", now=now
                )
        (log_a, ids_a), (log_b, ids_b) = captures
        try:
            return replay.build(log_a, ids_a, log_b, ids_b)
        except replay.Ambiguous:
            continue
    raise procs.BenchError("could not tell the ids in the captured statements apart")


def replay_job(job: dict[str, Any], start: Callable[[], None]) -> float:
    return replay.replay(job["template"], job["targets"], job["serial"], start)


def _replay_phase(
    phase: str,
    template: replay.Template,
    line_ids: list[int],
    tag: str,
    clients: int,
    database_url: str | None,
) -> RawResult:
    rows = Line.objects.filter(pk__in=line_ids).values_list("pk", "wallet_id")
    by_id = {pk: {"line": pk, "wallet": wallet} for pk, wallet in rows}
    jobs = [
        {
            "template": template,
            "targets": [by_id[pk] for pk in chunk],
            "serial": f"{tag}-{phase}-raw{number}-",
        }
        for number, chunk in enumerate(procs.split(line_ids, clients))
    ]
    connection.close()
    if database_url is None:
        run = procs.run_in_process(replay_job, jobs)
    else:
        run = procs.run_workers(database_url, "leb.ops.bench.fulfil:replay_job", jobs)
    return RawResult(
        name=phase,
        orders=len(line_ids),
        seconds=run.seconds,
        statements=template.statements,
        transactions=sum(1 for t in template.transactions if t.explicit),
        untraced=template.untraced,
    )


def run_fulfil_bench(
    orders: int,
    clients: int = 1,
    *,
    raw_replay: bool = True,
    database_url: str | None = None,
    log: Callable[[str], None] | None = None,
) -> FulfilResult:
    """Seed (or reuse) the lines, time both phases (each followed by the raw
    replay of its statements on the same lines), verify the ledger.

    Runs on Django's default database. With clients > 1 each client is its own
    process reaching the same database through `database_url` (derived from
    the connection settings when not given).
    """
    say = log or (lambda message: None)
    vendor = connection.vendor
    url = None
    if clients > 1:
        url = database_url or procs.url_from_settings(connection.settings_dict)
    now = clock.now()
    ensure_catalog(now)

    started = time.monotonic()
    # The spare lines: EXTRA_LINES for the warm-up and the capture, one per
    # client for its untimed first order.
    extra = EXTRA_LINES + clients
    say(f"seeding {orders + extra} lines through do_create_line/do_activate_line")
    chunks = procs.split(list(range(orders + extra)), clients)
    seed_jobs = [(chunk[0], len(chunk), now.isoformat()) for chunk in chunks if chunk]
    if url is None:
        procs.run_in_process(seed_job, seed_jobs)
    else:
        connection.close()
        procs.run_workers(url, "leb.ops.bench.fulfil:seed_job", seed_jobs)
    seed_seconds = time.monotonic() - started
    line_ids = bench_line_ids(orders + extra)
    if len(line_ids) < orders + extra:
        raise procs.BenchError(
            f"only {len(line_ids)} active benchmark lines, need {orders + extra}"
        )
    spare, warm_lines = line_ids[:EXTRA_LINES], line_ids[EXTRA_LINES:extra]
    line_ids = line_ids[extra:]
    tag = uuid.uuid4().hex[:8]

    for phase, code in PHASES.items():
        place_order(spare[0], Plan.objects.get(code=code), phase, f"{tag}-warmup")
    templates = {}
    if raw_replay:
        for phase in PHASES:
            templates[phase] = capture(phase, spare, tag)

    result = FulfilResult(vendor=vendor, clients=clients, orders=orders, seed_seconds=seed_seconds)
    for phase in PHASES:
        say(f"{phase}: {orders} orders, {clients} client(s)")
        result.phases.append(run_phase(phase, line_ids, clients, tag, url, warm_lines))
        if raw_replay:
            say(f"{phase}: the same statements through the bare driver")
            result.raw.append(_replay_phase(phase, templates[phase], line_ids, tag, clients, url))

    say("verifying the ledger")
    report = verify_ledger()
    result.verify_ok = report.ok
    result.verify_problems = report.problems[:20]
    totals = ", ".join(f"{currency}={total}" for currency, total in sorted(report.totals.items()))
    result.verify_summary = (
        f"{report.accounts} accounts, {report.transfers} transfers; sums: {totals}"
    )
    result.fulfilled = TopUpOrder.objects.filter(
        status=OrderStatus.FULFILLED, idempotency_key__startswith=f"bench:{tag}:"
    ).count()
    return result


def run_verbose(orders: int, clients: int, database_url: str) -> FulfilResult:
    """run_fulfil_bench for `leb bench fulfil`, which calls it in a child process."""
    return run_fulfil_bench(
        orders, clients, database_url=database_url, log=lambda message: print(message, flush=True)
    )
