"""The lifecycle sweep at scale: many lines, few due.

Lines are seeded with set-based SQL (one INSERT ... SELECT per table over a
generated series) straight into the tables of leb/lines and leb/ledger, with
explicit ids above whatever is there. Every `step`-th line is due, scattered
through the table as real due lines would be, in this mix:

    share  stored status  at `now` it is   steps  wallet balance
    50%    active         grace            1      yes
    25%    grace          suspended        1      yes
    10%    suspended      terminated       1      yes, forfeited
     5%    suspended      terminated       1      none
     5%    active         suspended        2      yes
     5%    active         terminated       3      yes, forfeited

Balances come from one seeding ledger group (clearing -> wallet), so the books
verify before and after. Lines that are not due are active (85%), in grace
with a transition weeks away (5%) or terminated long ago (10%, their numbers
available again); they have no wallet, which the sweep never reads for them.
"""

# The seeding SQL is assembled from integers and this module's constants only.
# ruff: noqa: S608

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model

from leb.common import clock
from leb.ledger.actions import system_account
from leb.ledger.models import Account, AccountKind, Transfer, TransferGroup
from leb.ledger.queries import verify_ledger
from leb.lines.actions import SweepResult, sweep_lines
from leb.lines.models import Line, LineEvent, LineEventKind, NumberPolicy, PhoneNumber

from . import procs

CURRENCY = "HKD"
POLICY_CODE = "bench-sweep"
# Hong Kong mobile prefixes for seeded numbers, a million numbers each.
MOBILE_PREFIXES = "5152535455565961626364656667686990919293"
GRACE_DAYS = 30
SUSPENSION_DAYS = 60
# (first category, last category) of j % 20 for each kind of due line.
ACTIVE_TO_GRACE = (0, 9)
GRACE_TO_SUSPENDED = (10, 14)
SUSPENDED_TO_TERMINATED = (15, 17)  # 17: no balance
ACTIVE_TO_SUSPENDED = (18, 18)
ACTIVE_TO_TERMINATED = (19, 19)


@dataclass
class SweepBenchResult:
    vendor: str
    lines: int
    due: int
    seed_seconds: float
    workers: int = 1
    seconds: float = 0.0
    swept_lines: int = 0
    transitions: int = 0
    terminated: int = 0
    forfeited_minor: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    expected_transitions: int = 0
    expected_terminated: int = 0
    expected_forfeited: int = 0
    plan: list[str] = field(default_factory=list)
    uses_due_index: bool = False
    verify_ok: bool = False
    verify_summary: str = ""
    verify_problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return (
            self.swept_lines == self.due
            and self.transitions == self.expected_transitions
            and self.terminated == self.expected_terminated
            and self.forfeited_minor.get(CURRENCY, 0) == self.expected_forfeited
        )


class _Dialect:
    """The few expressions that differ between PostgreSQL and SQLite."""

    def __init__(self, vendor: str, now: datetime) -> None:
        self.postgres = vendor == "postgresql"
        self.now = now.strftime("%Y-%m-%d %H:%M:%S")

    def series(self, count: int) -> tuple[str, str]:
        """(WITH clause, FROM item) giving one row per i in 1..count."""
        if self.postgres:
            return "", f"generate_series(1, {int(count)}) AS g(i)"
        return (
            f"WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {int(count)}) ",
            "g",
        )

    def days(self, expression: str) -> str:
        """now + expression days."""
        if self.postgres:
            return f"(TIMESTAMPTZ '{self.now}+00' + ({expression}) * INTERVAL '1 day')"
        return f"datetime('{self.now}', ({expression}) || ' days')"

    def pad(self, expression: str, width: int) -> str:
        if self.postgres:
            return f"lpad(({expression})::text, {width}, '0')"
        return f"substr('{'0' * width}' || ({expression}), -{width}, {width})"

    def mod(self, expression: str | int, divisor: int) -> str:
        # %% because every statement is run with a parameter list.
        return f"(({expression}) %% {int(divisor)})"

    def text(self, expression: str) -> str:
        return f"({expression})::text" if self.postgres else f"CAST(({expression}) AS TEXT)"


def _max_id(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        return int(cursor.fetchone()[0])


def _insert(model: type[Model], values: dict[str, str], source: str) -> tuple[str, list[Any]]:
    """INSERT INTO model's table (every column) SELECT values FROM source.

    Built from the model, so the rows have exactly its columns: the ones not
    given get their field's default (or NULL), and a new required column
    without a default fails loudly here instead of seeding something else.
    """
    columns, expressions, params = [], [], []
    for model_field in model._meta.concrete_fields:
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.column in values:
            expressions.append(values[model_field.column])
        elif model_field.null and not model_field.has_default():
            expressions.append("NULL")
        else:
            # What the ORM would write: the default, or "" for a blank text field.
            default = model_field.get_default()
            if default is None:
                raise ValueError(f"no value for {model._meta.db_table}.{model_field.column}")
            expressions.append("%s")
            params.append(model_field.get_db_prep_save(default, connection))
    unknown = set(values) - {f.column for f in model._meta.concrete_fields}
    if unknown:
        raise ValueError(f"{model._meta.db_table} has no column(s) {sorted(unknown)}")
    table = connection.ops.quote_name(model._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(expressions)} FROM {source}"
    )
    return sql, params


def _between(column: str, bounds: tuple[int, int]) -> str:
    return f"{column} BETWEEN {bounds[0]} AND {bounds[1]}"


def seed(lines: int, due: int, now: datetime) -> dict[str, int]:
    """Insert `lines` lines of which `due` are due at `now`; return what the
    sweep should find (transitions, terminations, forfeited amount)."""
    if not 0 < due <= lines:
        raise ValueError("need 0 < due <= lines")
    policy, _created = NumberPolicy.objects.get_or_create(
        code=POLICY_CODE,
        defaults={
            "name": "Sweep benchmark",
            "first_topup_days": 30,
            "grace_days": GRACE_DAYS,
            "suspension_days": SUSPENSION_DAYS,
            "quarantine_days": 90,
            "forfeit_balance_at_termination": True,
        },
    )
    clearing = system_account(AccountKind.CLEARING, CURRENCY, "bench-sweep")
    system_account(AccountKind.FORFEITED, CURRENCY)
    sql = _Dialect(connection.vendor, now)
    step = lines // due
    line_base, phone_base = _max_id("lines_line"), _max_id("lines_phonenumber")
    account_base, event_base = _max_id("ledger_account"), _max_id("lines_lineevent")
    transfer_base = _max_id("ledger_transfer")
    with_clause, series = sql.series(lines)
    # Per line i: is_due, j (index among due lines) and c (its category).
    mod = sql.mod
    is_due = f"({mod('i', step)} = 0 AND i / {step} <= {due})"
    j = f"(i / {step})"
    c = mod(j, 20)
    status = (
        f"CASE WHEN {is_due} THEN CASE WHEN {_between(c, GRACE_TO_SUSPENDED)} THEN 'grace' "
        f"WHEN {_between(c, SUSPENDED_TO_TERMINATED)} THEN 'suspended' ELSE 'active' END "
        f"WHEN {mod('i', 10)} = 1 THEN 'terminated' WHEN {mod('i', 20)} = 3 THEN 'grace' "
        "ELSE 'active' END"
    )
    # Days from now to valid_until, chosen so that the target status is reached.
    valid_offset = (
        f"CASE WHEN {is_due} THEN CASE "
        f"WHEN {_between(c, ACTIVE_TO_GRACE)} THEN -1 - {mod(j, 20)} "
        f"WHEN {_between(c, GRACE_TO_SUSPENDED)} OR {_between(c, ACTIVE_TO_SUSPENDED)} "
        f"THEN -{GRACE_DAYS + 1} - {mod(j, 20)} "
        f"ELSE -{GRACE_DAYS + SUSPENSION_DAYS + 1} - {mod(j, 20)} END "
        f"WHEN {mod('i', 10)} = 1 THEN -200 WHEN {mod('i', 20)} = 3 THEN -1 - {mod('i', 28)} "
        f"ELSE 1 + {mod('i', 365)} END"
    )
    # lifecycle.next_transition of the stored status.
    next_offset = (
        f"CASE WHEN {status} = 'terminated' THEN NULL "
        f"WHEN {status} = 'active' THEN {valid_offset} "
        f"WHEN {status} = 'grace' THEN {valid_offset} + {GRACE_DAYS} "
        f"ELSE {valid_offset} + {GRACE_DAYS + SUSPENSION_DAYS} END"
    )
    # Every due line but the no-balance kind holds 5.00 to 14.00.
    balance = f"CASE WHEN {c} = 17 THEN 0 ELSE 500 + {mod(j, 10)} * 100 END"
    number = f"({phone_base} + i - 1)"
    msisdn = (
        # Room for 20,000,000 lines.
        f"'+852' || substr('{MOBILE_PREFIXES}', 2 * ({number} / 1000000) + 1, 2) || "
        f"{sql.pad(mod(number, 1000000), 6)}"
    )
    long_ago = sql.days("-400")
    inserts = [
        # Numbers: assigned to their line, or available again after an old termination.
        _insert(
            PhoneNumber,
            {
                "id": f"{phone_base} + i",
                "msisdn": msisdn,
                "status": f"CASE WHEN {status} = 'terminated' THEN 'available' ELSE 'assigned' END",
                "updated_at": sql.days("0"),
            },
            series,
        ),
        _insert(
            Account,
            {
                "id": f"{account_base} + {j}",
                "code": f"'wallet:line:' || {sql.text(f'{line_base} + i')}",
                "kind": f"'{AccountKind.WALLET.value}'",
                "currency": f"'{CURRENCY}'",
                "no_negative": "TRUE",
                "tracks_balance": "TRUE",
                "balance": balance,
                "created_at": long_ago,
            },
            f"{series} WHERE {is_due}",
        ),
        _insert(
            Line,
            {
                "id": f"{line_base} + i",
                "iccid": f"'89852990' || {sql.pad(f'{line_base} + i', 12)}",
                "currency": f"'{CURRENCY}'",
                "status": status,
                "activated_at": long_ago,
                "valid_until": sql.days(valid_offset),
                "terminated_at": f"CASE WHEN {status} = 'terminated' THEN {sql.days('-110')} "
                "ELSE NULL END",
                "next_transition_at": sql.days(next_offset),
                "created_at": long_ago,
                "wallet_id": f"CASE WHEN {is_due} THEN {account_base} + {j} ELSE NULL END",
                "policy_id": str(policy.pk),
                "phone_number_id": f"{phone_base} + i",
            },
            series,
        ),
        _insert(
            LineEvent,
            {
                "id": f"{event_base} + i",
                "line_id": f"{line_base} + i",
                "kind": f"'{LineEventKind.ACTIVATED.value}'",
                "from_status": "'inventory'",
                "to_status": "'active'",
                "happened_at": long_ago,
                "recorded_at": long_ago,
                "actor": "'bench'",
            },
            series,
        ),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement, params in inserts:
            cursor.execute(with_clause + statement, params)
        group = TransferGroup.objects.create(
            idempotency_key=f"bench:sweep:seed:{line_base}",
            content_hash="-",
            description="sweep benchmark: wallet balances",
            created_at=now,
        )
        statement, params = _insert(
            Transfer,
            {
                "id": f"{transfer_base} + i",
                "group_id": str(group.pk),
                "debit_account_id": str(clearing.pk),
                "credit_account_id": f"{account_base} + {j}",
                "amount": balance,
                "currency": f"'{CURRENCY}'",
                "code": "'bench.seed'",
                "created_at": sql.days("0"),
            },
            f"{series} WHERE {is_due} AND {c} <> 17",
        )
        cursor.execute(with_clause + statement, params)
    if sql.postgres:
        with connection.cursor() as cursor:
            for table in (
                "lines_phonenumber",
                "ledger_account",
                "lines_line",
                "lines_lineevent",
                "ledger_transfer",
            ):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
                # Fresh statistics, as autovacuum would have them on a live system.
                cursor.execute(f"VACUUM ANALYZE {table}")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    categories = [k % 20 for k in range(1, due + 1)]

    def count(bounds: tuple[int, int]) -> int:
        return sum(1 for k in categories if bounds[0] <= k <= bounds[1])

    forfeit = sum(
        500 + (k % 10) * 100
        for k in range(1, due + 1)
        if k % 20 in (15, 16) or _between_py(k % 20, ACTIVE_TO_TERMINATED)
    )
    return {
        "transitions": count(ACTIVE_TO_GRACE)
        + count(GRACE_TO_SUSPENDED)
        + count(SUSPENDED_TO_TERMINATED)
        + 2 * count(ACTIVE_TO_SUSPENDED)
        + 3 * count(ACTIVE_TO_TERMINATED),
        "terminated": count(SUSPENDED_TO_TERMINATED) + count(ACTIVE_TO_TERMINATED),
        "forfeited": forfeit,
    }


def _between_py(value: int, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= value <= bounds[1]


class _Captured(Exception):
    pass


def due_query() -> tuple[str, list[Any]]:
    """The SQL and parameters the sweep uses to pick due lines, taken from a
    sweep stopped before its first statement reached the database."""
    found: list[tuple[str, list[Any]]] = []

    def stop(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if (
            sql.lstrip().upper().startswith("SELECT")
            and '"lines_line"' in sql
            and "next_transition_at" in sql
        ):
            found.append((sql, list(params or ())))
            raise _Captured
        return execute(sql, params, many, context)

    try:
        with transaction.atomic(), connection.execute_wrapper(stop):
            sweep_lines(clock.now(), batch_size=settings.SWEEP_BATCH_SIZE)
    except _Captured:
        pass
    if not found:
        raise RuntimeError("the sweep ran no due-lines query")
    return found[0]


def explain_due_query() -> list[str]:
    sql, params = due_query()
    lines: list[str] = []
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ANALYZE runs it (and takes its row locks); the rollback below releases them.
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            lines = [row[0] for row in cursor.fetchall()]
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            lines = [str(row[-1]) for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return lines


def sweep_job(job: str, start: Callable[[], None]) -> SweepResult:
    """One sweep worker: its own connection, the same `now` as the others."""
    now = datetime.fromisoformat(job)
    connection.ensure_connection()
    start()
    return sweep_lines(now, batch_size=settings.SWEEP_BATCH_SIZE)


def run_sweep_bench(
    lines: int,
    due: int,
    *,
    workers: int = 1,
    database_url: str | None = None,
    log: Callable[[str], None] | None = None,
) -> SweepBenchResult:
    """Seed, explain the due-lines query, time one sweep (by `workers`
    processes at once, which SKIP LOCKED lets split the due lines), verify."""
    say = log or (lambda message: None)
    now = clock.now()
    say(f"seeding {lines} lines, {due} due, with INSERT ... SELECT")
    started = time.monotonic()
    expected = seed(lines, due, now)
    result = SweepBenchResult(
        vendor=connection.vendor,
        lines=lines,
        due=due,
        seed_seconds=time.monotonic() - started,
        workers=workers,
    )
    result.expected_transitions = expected["transitions"]
    result.expected_terminated = expected["terminated"]
    result.expected_forfeited = expected["forfeited"]
    result.plan = explain_due_query()
    result.uses_due_index = any("lines_line_due_idx" in row for row in result.plan)

    say(f"sweeping ({workers} worker{'s' if workers > 1 else ''})")
    job = clock.now().isoformat()
    if workers == 1:
        run = procs.run_in_process(sweep_job, [job])
    else:
        url = database_url or procs.url_from_settings(connection.settings_dict)
        connection.close()
        run = procs.run_workers(url, "leb.ops.bench.sweep:sweep_job", [job] * workers)
    result.seconds = run.seconds
    for swept in run.results:
        result.swept_lines += swept.lines
        result.transitions += swept.transitions
        result.terminated += swept.terminated
        result.batches += swept.batches
        for currency, amount in swept.forfeited_minor.items():
            result.forfeited_minor[currency] = result.forfeited_minor.get(currency, 0) + amount

    say("verifying the ledger")
    report = verify_ledger()
    result.verify_ok = report.ok
    result.verify_problems = report.problems[:20]
    totals = ", ".join(f"{currency}={total}" for currency, total in sorted(report.totals.items()))
    result.verify_summary = (
        f"{report.accounts} accounts, {report.transfers} transfers; sums: {totals}"
    )
    return result


def run_verbose(lines: int, due: int, workers: int, database_url: str) -> SweepBenchResult:
    """run_sweep_bench for `leb bench sweep`, which calls it in a child process."""
    return run_sweep_bench(
        lines,
        due,
        workers=workers,
        database_url=database_url,
        log=lambda message: print(message, flush=True),
    )
