"""Agent top-ups that all draw on one agent's float (the hot case).

The service layer: clients call `do_create_agent_topup` in instant mode, the
action `POST /agent/v1/topups` calls, each with its own connection and its
own slice of the lines, every sale taking the one agent's row lock and
debiting its one float account. The HTTP phase (`leb.ops.bench.loadgen`)
sends signed requests to gunicorn on the same database; `verify` checks the
books and that every top-up exists exactly once after either phase.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.db.models import Sum

from leb.agents.actions import (
    do_approve_deposit,
    do_create_agent,
    do_create_agent_topup,
    do_create_api_key,
    do_record_deposit,
)
from leb.agents.models import Agent, AgentTopUp, AgentTopUpStatus
from leb.agents.queries import balance
from leb.common import clock
from leb.ledger.models import TransferGroup
from leb.ledger.queries import verify_ledger
from leb.lines.models import Line
from leb.topups.models import OrderStatus, TopUpOrder

from . import fulfil, procs

PLAN = fulfil.SPREAD_PLAN  # no promotion applies to it
DISCOUNT = Decimal("8")
DEPOSIT = 10**13  # minor units: the float never runs dry during a run
RETRIES = 3
REPLAY_SAMPLE = 20


@dataclass
class Seeded:
    agent_id: int
    code: str
    key_id: str
    secret: str
    plan_code: str
    msisdns: list[str]
    deposit: int
    seed_seconds: float


def _staff(username: str) -> Any:
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def seed(lines: int, clients: int = 1, database_url: str | None = None) -> Seeded:
    """The catalog, `lines` active lines (through the line actions), one agent
    with a float funded by an approved deposit, and an API key."""
    started = time.monotonic()
    now = clock.now()
    fulfil.ensure_catalog(now)
    line_ids = fulfil.seed_active_lines(lines, clients, database_url, now)
    agent = do_create_agent(
        actor="bench",
        now=now,
        legal_name="Benchmark Agent Ltd",
        display_name="Benchmark Agent",
        region="HK",
        currency=fulfil.CURRENCY,
        discount_percent=DISCOUNT,
    )
    deposit = do_record_deposit(
        agent,
        amount=DEPOSIT,
        currency=agent.currency,
        bank_reference=f"BENCH-{secrets.token_hex(4)}",
        staff=_staff("bench-recorder"),
        now=now,
    )
    do_approve_deposit(deposit, staff=_staff("bench-approver"), now=now)
    key = do_create_api_key(agent, actor="bench", label="bench", now=now)
    msisdns = list(
        Line.objects.filter(pk__in=line_ids)
        .order_by("pk")
        .values_list("phone_number__msisdn", flat=True)
    )
    return Seeded(
        agent_id=agent.pk,
        code=agent.code,
        key_id=key.key.key_id,
        secret=key.secret,
        plan_code=PLAN,
        msisdns=msisdns,
        deposit=DEPOSIT,
        seed_seconds=time.monotonic() - started,
    )


def external_id(tag: str, client: int, number: int) -> str:
    return f"{tag}-{client}-{number}"


def topup_job(job: dict[str, Any], start: Callable[[], None]) -> dict[str, Any]:
    """A client: top-ups on its own lines, in turn, until its count or the
    deadline. A deadlock or lock timeout is retried with the same external id,
    which the action makes safe (the first result is returned)."""
    agent = Agent.objects.get(pk=job["agent_id"])
    msisdns: list[str] = job["msisdns"]
    count: int | None = job["count"]
    seconds: float | None = job["seconds"]
    connection.ensure_connection()
    latencies: list[float] = []
    sent: list[str] = []
    errors = retries = completed = 0
    first_error = ""
    # One sale before the clock starts: a fresh process's first sale loads
    # templates, catalogs and code paths, for seconds, while it holds the
    # agent's lock, and would stall every other client.
    warm = external_id(job["tag"], job["client"], -1)
    do_create_agent_topup(
        agent, external_id=warm, msisdn=msisdns[0], plan_code=PLAN, allow_repeat=True
    )
    sent.append(warm)
    start()
    deadline = time.monotonic() + seconds if seconds else None
    number = 0
    while True:
        if count is not None and number >= count:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        ext = external_id(job["tag"], job["client"], number)
        msisdn = msisdns[number % len(msisdns)]
        number += 1
        began = time.monotonic()
        for attempt in range(RETRIES + 1):
            try:
                result = do_create_agent_topup(
                    agent,
                    external_id=ext,
                    msisdn=msisdn,
                    plan_code=PLAN,
                    allow_repeat=True,
                )
            except OperationalError as exc:
                if attempt < RETRIES:
                    retries += 1
                    continue
                errors += 1
                first_error = first_error or repr(exc)
            except Exception as exc:
                errors += 1
                first_error = first_error or repr(exc)
            else:
                sent.append(ext)
                if result.topup.status == AgentTopUpStatus.COMPLETED:
                    completed += 1
                else:
                    errors += 1
                    first_error = (
                        first_error or f"{ext}: {result.topup.status} {result.topup.reason}"
                    )
            break
        latencies.append(time.monotonic() - began)
    return {
        "sent": sent,
        "completed": completed,
        "errors": errors,
        "retries": retries,
        "latencies": latencies,
        "first_error": first_error,
    }


def percentile_ms(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


@dataclass
class ServiceResult:
    tag: str
    clients: int
    topups: int
    errors: int
    retries: int
    seconds: float
    p50_ms: float
    p99_ms: float
    first_error: str
    external_ids: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.topups / self.seconds if self.seconds else 0.0


def run_service(
    seeded: Seeded,
    *,
    clients: int,
    tag: str,
    count: int | None = None,
    seconds: float | None = None,
    database_url: str | None = None,
) -> ServiceResult:
    """`clients` clients selling top-ups from the one float: `count` in all
    (split between them) or for `seconds`."""
    slices = procs.split(seeded.msisdns, clients)
    counts = [len(c) for c in procs.split(list(range(count)), clients)] if count else []
    jobs = [
        {
            "agent_id": seeded.agent_id,
            "msisdns": numbers,
            "count": counts[index] if count else None,
            "seconds": seconds,
            "tag": tag,
            "client": index,
        }
        for index, numbers in enumerate(slices)
    ]
    if database_url is None:
        run = procs.run_in_process(topup_job, jobs)
    else:
        connection.close()
        run = procs.run_workers(database_url, "leb.ops.bench.agents:topup_job", jobs)
    latencies = [lat for result in run.results for lat in result["latencies"]]
    sent = [ext for result in run.results for ext in result["sent"]]
    errors = sum(result["errors"] for result in run.results)
    return ServiceResult(
        tag=tag,
        clients=len(jobs),
        topups=sum(result["completed"] for result in run.results),
        errors=errors,
        retries=sum(result["retries"] for result in run.results),
        seconds=run.seconds,
        p50_ms=statistics.median(latencies) * 1000 if latencies else 0.0,
        p99_ms=percentile_ms(latencies, 0.99),
        first_error=next((r["first_error"] for r in run.results if r["first_error"]), ""),
        external_ids=sent,
    )


@dataclass
class Verified:
    ok: bool
    problems: list[str]
    summary: str
    completed: int
    float_available: int
    float_expected: int


def verify(seeded: Seeded, expected: dict[str, list[str]]) -> Verified:
    """After the phases: the ledger verifies; the float is not negative and is
    the deposit less the wholesale price of every completed top-up; each
    external id a client was answered for exists exactly once, completed, with
    one fulfilled order and one sale posting; nothing else was sold; and
    sending some of them again changes nothing."""
    agent = Agent.objects.get(pk=seeded.agent_id)
    problems: list[str] = []
    report = verify_ledger()
    if not report.ok:
        problems.extend(report.problems[:20])
    topups = AgentTopUp.objects.filter(agent=agent)
    completed = topups.filter(status=AgentTopUpStatus.COMPLETED)
    spent = completed.aggregate(s=Sum("wholesale_price"))["s"] or 0
    found = balance(agent)
    if found.available < 0:
        problems.append(f"the float is negative: {found.available}")
    if found.available != seeded.deposit - spent or found.reserved != 0:
        problems.append(
            f"float {found.available} (reserved {found.reserved}), expected "
            f"{seeded.deposit - spent}: deposit {seeded.deposit} less {spent} sold"
        )
    answered = [ext for ids in expected.values() for ext in ids]
    if len(set(answered)) != len(answered):
        problems.append("a client was answered twice for one external id")
    rows = dict(topups.values_list("external_id", "status"))
    missing = [ext for ext in answered if rows.get(ext) != AgentTopUpStatus.COMPLETED]
    if missing:
        problems.append(f"{len(missing)} answered top-ups not completed, e.g. {missing[:3]}")
    tags = tuple(f"{tag}-" for tag in expected)
    unexpected = sorted(set(rows) - set(answered))
    # A request whose answer was lost (a timeout) may still have sold: it is
    # listed, and the books above include it.
    if any(not ext.startswith(tags) for ext in unexpected):
        problems.append(f"top-ups from no benchmark client: {unexpected[:3]}")
    prefix = f"agent:{agent.code}:"
    orders = TopUpOrder.objects.filter(idempotency_key__startswith=prefix)
    fulfilled = orders.filter(status=OrderStatus.FULFILLED).count()
    groups = TransferGroup.objects.filter(idempotency_key__startswith=prefix).count()
    total = completed.count()
    if not (orders.count() == fulfilled == groups == total):
        problems.append(
            f"{total} completed top-ups, {orders.count()} orders ({fulfilled} fulfilled), "
            f"{groups} sale postings: each top-up must have exactly one of each"
        )
    # Exactly once: the same requests again return the first result.
    before = (topups.count(), orders.count(), TransferGroup.objects.count())
    by_ext = dict(topups.values_list("external_id", "msisdn"))
    for ext in answered[:REPLAY_SAMPLE]:
        again = do_create_agent_topup(
            agent, external_id=ext, msisdn=by_ext[ext], plan_code=PLAN, allow_repeat=True
        )
        if not again.replayed:
            problems.append(f"{ext} sent again was sold again")
    after = (topups.count(), orders.count(), TransferGroup.objects.count())
    if after != before:
        problems.append(f"sending top-ups again wrote rows: {before} -> {after}")
    totals = ", ".join(f"{currency}={total}" for currency, total in sorted(report.totals.items()))
    return Verified(
        ok=not problems,
        problems=problems,
        summary=f"{report.accounts} accounts, {report.transfers} transfers; sums: {totals}",
        completed=total,
        float_available=found.available,
        float_expected=seeded.deposit - spent,
    )


@dataclass
class AgentsResult:
    vendor: str
    seeded: Seeded
    service: ServiceResult
    verified: Verified | None = None


def run_agents_bench(
    *,
    lines: int,
    clients: int = 1,
    count: int | None = None,
    seconds: float | None = None,
    database_url: str | None = None,
    verify_now: bool = True,
    log: Callable[[str], None] | None = None,
) -> AgentsResult:
    """Seed, then the service-layer phase, then verify. Runs on Django's
    default database; with clients > 1 each client is its own process
    reaching it through `database_url` (derived from the settings if not given)."""
    say = log or (lambda message: None)
    url = None
    if clients > 1:
        url = database_url or procs.url_from_settings(connection.settings_dict)
    say(f"seeding {lines} lines, one agent, its float and an API key")
    seeded = seed(lines, clients, url)
    tag = "svc" + secrets.token_hex(3)
    say(f"service layer: {clients} client(s), " + (f"{count} top-ups" if count else f"{seconds} s"))
    service = run_service(
        seeded, clients=clients, tag=tag, count=count, seconds=seconds, database_url=url
    )
    result = AgentsResult(vendor=connection.vendor, seeded=seeded, service=service)
    if verify_now:
        result.verified = verify(seeded, {tag: service.external_ids})
    return result


def run_verbose(
    lines: int, clients: int, count: int | None, seconds: float | None, url: str
) -> AgentsResult:
    """run_agents_bench for `leb bench agents`, in a child process; the
    command verifies after the HTTP phase."""
    return run_agents_bench(
        lines=lines,
        clients=clients,
        count=count,
        seconds=seconds,
        database_url=url,
        verify_now=False,
        log=lambda message: print(message, flush=True),
    )


def verify_in_child(seeded: dict[str, Any], expected: dict[str, list[str]]) -> Verified:
    """verify() for the command, whose process cannot unpickle this module's
    classes before Django is set up, so `seeded` comes as a dict."""
    return verify(Seeded(**seeded), expected)
