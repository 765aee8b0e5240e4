"""`leb bench http`: what the HTTP scenarios do, called in process.

Seeding (lines, the catalog, an API user and its personal token), the
service-layer rate of each operation the HTTP scenarios
(`leb.ops.bench.scenarios`) make through gunicorn — the quick check through
`public_line_status`, a whole top-up through `do_create_order`,
`do_start_attempt`, the sandbox gateway's decision and `sync_attempt` — and
the check of the books afterwards.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import OperationalError, connection

from leb.api.actions import do_create_personal_token
from leb.catalog.models import Channel
from leb.catalog.quotes import find_plan
from leb.common import clock
from leb.ledger.models import TransferGroup
from leb.ledger.queries import verify_ledger
from leb.lines.identifiers import normalize_msisdn
from leb.lines.models import Line, LineEvent, LineEventKind
from leb.lines.queries import live_line_for_number, public_line_status
from leb.payments import actions as payment_actions
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.payments.providers import sandbox
from leb.payments.providers.base import SUCCEEDED
from leb.topups.actions import do_create_order
from leb.topups.models import OrderStatus, TopUpOrder

from . import fulfil, loadgen, procs

QUICK_CHECK = "quick-check"
TOPUP = "topup"
SCENARIOS = (QUICK_CHECK, TOPUP)
PLAN = fulfil.SPREAD_PLAN  # no promotion applies to it
USERNAME = "bench-api"
WARM_OPERATIONS = 2
RETRIES = 3


@dataclass
class Seeded:
    user_id: int
    token: str
    plan_code: str
    msisdns: list[str]
    seed_seconds: float


def seed(lines: int, clients: int = 1, database_url: str | None = None) -> Seeded:
    """The catalog, `lines` active lines (through the line actions), and a
    customer with a personal API token."""
    started = time.monotonic()
    now = clock.now()
    fulfil.ensure_catalog(now)
    line_ids = fulfil.seed_active_lines(lines, clients, database_url, now)
    user, _created = get_user_model().objects.get_or_create(
        username=USERNAME, defaults={"email": "bench-api@example.invalid"}
    )
    user.set_unusable_password()
    user.save(update_fields=["password"])
    _token, clear = do_create_personal_token(user, "bench http", actor="bench", now=now)
    msisdns = list(
        Line.objects.filter(pk__in=line_ids)
        .order_by("pk")
        .values_list("phone_number__msisdn", flat=True)
    )
    return Seeded(
        user_id=user.pk,
        token=clear,
        plan_code=PLAN,
        msisdns=msisdns,
        seed_seconds=time.monotonic() - started,
    )


def seed_verbose(lines: int, clients: int, url: str) -> Seeded:
    """seed() for the command, in a child process."""
    return seed(lines, clients, url if clients > 1 else None)


# --- the operations, called directly --------------------------------------------------


def quick_check(msisdn: str) -> str:
    """What `GET /api/v1/lines/check` asks of the domain."""
    if public_line_status(msisdn, clock.now()) is None:
        raise loadgen.OperationFailed(f"{msisdn}: no line in service")
    return ""


def topup(msisdn: str, key: str, user: Any) -> str:
    """What the HTTP top-up asks of the domain, in the same order: the order
    (the line found by its number, the plan by its code, the key scoped to
    the customer as the API does), the attempt at the sandbox, the gateway's
    decision for the succeeding card, and the settlement the payment poll
    makes. Returns the order's public id."""
    line = live_line_for_number(normalize_msisdn(msisdn))
    if line is None:
        raise loadgen.OperationFailed(f"{msisdn}: no line in service")
    order = do_create_order(
        line=line,
        channel=Channel.WEB,
        idempotency_key=f"api:u{user.pk}:{key}",
        plan=find_plan(PLAN),
        customer=user,
        actor=f"api:user:{user.pk}",
    )
    attempt = payment_actions.do_start_attempt(order, "sandbox")
    attempt = sandbox.complete_at_gateway(attempt, SUCCEEDED)
    attempt = payment_actions.sync_attempt(attempt)
    attempt.order.refresh_from_db()
    if attempt.order.status != OrderStatus.FULFILLED:
        raise loadgen.OperationFailed(
            f"order {order.public_id}: attempt {attempt.status}, order {attempt.order.status}"
        )
    return str(order.public_id)


def service_job(job: dict[str, Any], start: Callable[[], None]) -> dict[str, Any]:
    """A client process: the operation over its numbers in turn, for
    `warmup` seconds untimed, then `seconds` timed. A lock timeout or
    deadlock is retried with the same key, which the actions make safe."""
    msisdns: list[str] = job["msisdns"]
    user = get_user_model().objects.get(pk=job["user_id"]) if job["scenario"] == TOPUP else None
    connection.ensure_connection()

    def once(number: int) -> str:
        msisdn = msisdns[number % len(msisdns)]
        if user is None:
            return quick_check(msisdn)
        key = f"{job['tag']}-{job['client']}-{number}"
        for attempt in range(RETRIES + 1):
            try:
                return topup(msisdn, key, user)
            except OperationalError:
                if attempt == RETRIES:
                    raise
        raise AssertionError("unreachable")

    done: list[str] = []
    # A fresh process's first operations load templates, catalogs and code.
    for number in range(WARM_OPERATIONS):
        if ident := once(-1 - number):
            done.append(ident)
    start()
    window = loadgen.Window(
        time.monotonic() + job["warmup"], time.monotonic() + job["warmup"] + job["seconds"]
    )
    latencies: list[float] = []
    completed = failed = 0
    first_error = ""
    number = 0
    while True:
        began = time.monotonic()
        if began >= window.stop_at:
            break
        ok = True
        try:
            ident = once(number)
        except Exception as exc:
            ok = False
            first_error = first_error or repr(exc)
        else:
            if ident:
                done.append(ident)
        number += 1
        finished = time.monotonic()
        if window.holds(began, finished):
            if ok:
                completed += 1
                latencies.append(finished - began)
            else:
                failed += 1
    return {
        "completed": completed,
        "failed": failed,
        "latencies": latencies,
        "done": done,
        "first_error": first_error,
    }


@dataclass
class ServiceResult:
    scenario: str
    clients: int
    seconds: float
    completed: int
    failed: int
    p50_ms: float
    p99_ms: float
    first_error: str
    done: list[str]

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


def run_service(
    seeded: Seeded,
    scenario: str,
    *,
    clients: int,
    seconds: float,
    warmup: float,
    database_url: str | None = None,
) -> ServiceResult:
    """`clients` client processes (this process when no `database_url` is
    given) running the operation of `scenario` for `warmup` + `seconds`."""
    tag = "svc" + secrets.token_hex(3)
    jobs = [
        {
            "scenario": scenario,
            "user_id": seeded.user_id,
            "msisdns": numbers,
            "seconds": seconds,
            "warmup": warmup,
            "tag": tag,
            "client": index,
        }
        for index, numbers in enumerate(procs.split(seeded.msisdns, clients))
    ]
    if database_url is None:
        run = procs.run_in_process(service_job, jobs)
    else:
        connection.close()
        run = procs.run_workers(database_url, "leb.ops.bench.web:service_job", jobs)
    latencies = [lat for result in run.results for lat in result["latencies"]]
    return ServiceResult(
        scenario=scenario,
        clients=len(jobs),
        seconds=seconds,
        completed=sum(result["completed"] for result in run.results),
        failed=sum(result["failed"] for result in run.results),
        p50_ms=loadgen.percentile_ms(latencies, 0.5),
        p99_ms=loadgen.percentile_ms(latencies, 0.99),
        first_error=next((r["first_error"] for r in run.results if r["first_error"]), ""),
        done=[ident for result in run.results for ident in result["done"]],
    )


def service_in_child(
    seeded: dict[str, Any],
    scenario: str,
    clients: int,
    seconds: float,
    warmup: float,
    url: str,
) -> ServiceResult:
    """run_service() for the command (which cannot unpickle this module's
    classes before Django is set up, so `seeded` comes as a dict)."""
    return run_service(
        Seeded(**seeded),
        scenario,
        clients=clients,
        seconds=seconds,
        warmup=warmup,
        database_url=url if clients > 1 else None,
    )


# --- the books afterwards ----------------------------------------------------------------


@dataclass
class Verified:
    ok: bool
    problems: list[str]
    summary: str
    orders: dict[str, int]
    fulfilled: int


def verify(seeded: Seeded, answered: list[str]) -> Verified:
    """The ledger verifies; every top-up a client was told is fulfilled is
    fulfilled; every fulfilled order was fulfilled once (one fulfilment
    posting, one `topped_up` line event, one receipt number of its own, one
    succeeded payment); no order is left paid but not fulfilled."""
    problems: list[str] = []
    report = verify_ledger()
    if not report.ok:
        problems.extend(report.problems[:20])
    orders = TopUpOrder.objects.filter(customer_id=seeded.user_id)
    by_status = Counter(orders.values_list("status", flat=True))
    fulfilled = dict(orders.filter(status=OrderStatus.FULFILLED).values_list("pk", "public_id"))
    public_ids = {str(public_id) for public_id in fulfilled.values()}
    missing = [ident for ident in answered if ident not in public_ids]
    if missing:
        problems.append(f"{len(missing)} top-ups answered fulfilled are not, e.g. {missing[:3]}")
    if len(set(answered)) != len(answered):
        problems.append("a client was answered fulfilled twice for one order")
    if by_status.get(OrderStatus.PAID):
        problems.append(f"{by_status[OrderStatus.PAID]} orders paid but not fulfilled")
    keys = {f"order:{pk}:fulfil" for pk in fulfilled}
    postings = set(
        TransferGroup.objects.filter(
            idempotency_key__startswith="order:", idempotency_key__endswith=":fulfil"
        ).values_list("idempotency_key", flat=True)
    )
    if keys - postings:
        problems.append(f"{len(keys - postings)} fulfilled orders without a fulfilment posting")
    all_keys = {f"order:{pk}:fulfil" for pk in orders.values_list("pk", flat=True)}
    stray = (postings & all_keys) - keys
    if stray:
        problems.append(f"{len(stray)} fulfilment postings of orders that are not fulfilled")
    events = Counter(
        str((data or {}).get("order", ""))
        for data in LineEvent.objects.filter(kind=LineEventKind.TOPPED_UP).values_list(
            "data", flat=True
        )
    )
    twice = [ident for ident in public_ids if events.get(ident, 0) != 1]
    if twice:
        problems.append(f"{len(twice)} fulfilled orders without exactly one line event")
    receipts = list(
        orders.filter(status=OrderStatus.FULFILLED).values_list("receipt_number", flat=True)
    )
    if not all(receipts) or len(set(receipts)) != len(receipts):
        problems.append("fulfilled orders without a receipt number of their own")
    paid = Counter(
        PaymentAttempt.objects.filter(
            order__customer_id=seeded.user_id, status=AttemptStatus.SUCCEEDED
        ).values_list("order_id", flat=True)
    )
    if set(paid) != set(fulfilled) or any(count != 1 for count in paid.values()):
        problems.append(
            f"{len(paid)} orders with a succeeded payment ({sum(paid.values())} payments), "
            f"{len(fulfilled)} fulfilled: each fulfilled order must have exactly one"
        )
    totals = ", ".join(f"{currency}={total}" for currency, total in sorted(report.totals.items()))
    return Verified(
        ok=not problems,
        problems=problems,
        summary=f"{report.accounts} accounts, {report.transfers} transfers; sums: {totals}",
        orders=dict(sorted(by_status.items())),
        fulfilled=len(fulfilled),
    )


def verify_in_child(seeded: dict[str, Any], answered: list[str]) -> Verified:
    return verify(Seeded(**seeded), answered)
