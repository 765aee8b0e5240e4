"""`leb bench fulfil`, `sweep`, `reminders`, `agents`, `http` and `all`: see
docs/performance.md.

The command itself never touches the benchmark database through Django: it
creates the database, then runs migrations, seeding and timing in spawned
processes that Django was set up for that database from the start.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leb.ops.bench import cpu, dbadmin, loadgen, procs, scenarios
from leb.ops.bench.procs import SECRET_KEY_VARIABLE, BenchError, call_in_child

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/leb_bench"
SPREAD_GOAL = 0.5
HOT_GOAL = 0.25
SQLITE_GOAL = 0.8
# (lines, due lines) -> seconds: the sweep's goals on PostgreSQL.
SWEEP_GOALS = {(1_000_000, 10_000): 1.0, (10_000_000, 100_000): 10.0}
REMINDERS_GOAL_SECONDS = 10.0
# The reminder benchmark shares the sweep's scratch database (both recreate it on every run).
REMINDERS_DATABASE = "leb_bench_sweep"
AGENTS_DATABASE = "leb_bench_agents"
AGENTS_PGBENCH_DATABASE = "leb_pgbench_agents"
AGENTS_HOT_GOAL = 0.25
AGENTS_HTTP_RATE_GOAL = 500.0
AGENTS_HTTP_P99_GOAL_MS = 100.0
HTTP_DATABASE = "leb_bench_http"
QUICK_CHECK = "quick-check"
TOPUP = "topup"
HTTP_SCENARIOS = {
    QUICK_CHECK: (scenarios.QUICK_CHECK, "quick checks", "quick check"),
    TOPUP: (scenarios.API_TOPUP, "top-ups", "top-up"),
}
HTTP_RATE_GOALS = {QUICK_CHECK: 1000.0, TOPUP: 300.0}
HTTP_P99_GOAL_MS = 50.0
# The setting that rate-limits the quick check per client address.
LINE_CHECK_RATE_VARIABLE = "LEB_API_LINE_CHECK_RATE"
BENCHES = ("fulfil", "sweep", "reminders", "agents", "http")
# `leb bench all --quick`: each bench small, the whole run a few minutes.
QUICK: dict[str, list[str]] = {
    "fulfil": ["--clients", "2", "--orders", "50", "--pgbench-seconds", "3"],
    "sweep": ["--lines", "20000", "--due", "500", "--compare-lines", "2000"],
    "reminders": ["--lines", "20000", "--due", "1000", "--compare-lines", "0"],
    "agents": [
        *("--clients", "2", "--seconds", "3", "--lines", "50", "--pgbench-seconds", "3"),
        *("--http-seconds", "3", "--http-warmup", "1", "--http-connections", "8"),
        *("--web-workers", "2"),
    ],
    "http": [
        *("--seconds", "3", "--warmup", "1", "--lines", "100", "--connections", "8"),
        *("--web-workers", "2"),
    ],
}


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _machine() -> str:
    memory = "?"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for row in meminfo.read_text().splitlines():
            if row.startswith("MemTotal:"):
                memory = f"{int(row.split()[1]) / 1024 / 1024:.1f} GiB"
    return f"{os.cpu_count()} CPUs, {memory} memory"


def _verdict(value: float, goal: float, *, below: bool = False) -> str:
    met = value < goal if below else value >= goal
    return "met" if met else "MISSED"


@dataclasses.dataclass
class SummaryRow:
    bench: str
    figure: str
    ratio: str
    goal: str
    verdict: str


def render_summary(rows: list[SummaryRow]) -> list[str]:
    """The table `leb bench all` ends with, one line per figure."""
    header = SummaryRow("bench", "figure", "ratio", "goal", "verdict")
    table = [header, *rows]
    widths = [
        max(len(getattr(row, name)) for row in table)
        for name in ("bench", "figure", "ratio", "goal")
    ]
    lines = []
    for row in table:
        cells = [row.bench, row.figure, row.ratio, row.goal]
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            + "  "
            + row.verdict
        )
    lines.insert(1, "-" * len(lines[0]))
    return lines


def _cores(value: float) -> str:
    return f"{value:.2f}"


def describe_cpu(report: cpu.CpuReport | None, completed: int, noun: str) -> list[str]:
    """What the CPU samples of the timed window say: cores busy per group,
    CPU time per operation, and what limits the rate."""
    if report is None:
        return ["CPU: not sampled (no /proc on this system)"]
    groups = ", ".join(f"{name} {_cores(value)}" for name, value in report.groups.items())
    lines = [
        f"CPU in the timed window (cores busy, of {report.cores}): {groups}, other work on "
        f"the machine {_cores(report.others)}; the whole machine {_cores(report.machine)}"
    ]
    if completed:
        per = ", ".join(
            f"{name} {value * report.seconds / completed * 1000:.1f} ms"
            for name, value in report.groups.items()
        )
        ours_ms = report.ours * report.seconds / completed * 1000
        ceiling = report.cores * 1000 / ours_ms if ours_ms else 0.0
        lines.append(
            f"CPU per {noun}: {per}; at that cost the {report.cores} cores, with nothing else "
            f"running, would make at most {ceiling:,.0f} {noun}s/s"
        )
    busiest = max(report.groups, key=lambda name: report.groups[name], default="")
    if report.machine >= 0.9 * report.cores:
        reason = (
            f"limit: CPU. The {report.cores} cores were busy ({_cores(report.machine)}); "
            f"{busiest} used the most ({_cores(report.groups.get(busiest, 0.0))})"
        )
        if report.others >= 0.25:
            reason += f", and other work on the machine took {_cores(report.others)}"
    else:
        idle = report.cores - report.machine
        reason = (
            f"limit: not the CPU ({_cores(idle)} cores idle): operations wait for each "
            "other or for the database (locks, commits, round trips)"
        )
    lines.append(reason)
    return lines


class Command(BaseCommand):
    help = "Benchmarks: top-up fulfilment against pgbench or raw sqlite3, and the lifecycle sweep."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="bench", required=True)
        fulfil = sub.add_parser(
            "fulfil",
            help="orders/s (create + pay + fulfil), spread over lines and hot on one promotion",
        )
        fulfil.add_argument(
            "--database-url",
            default=DEFAULT_SERVER,
            help="PostgreSQL server (the database used is always leb_bench; pgbench uses "
            "leb_pgbench) or sqlite:///path (a file whose name contains 'bench', recreated)",
        )
        fulfil.add_argument(
            "--clients",
            type=_positive,
            default=None,
            help="worker processes, each with its own connection (PostgreSQL; default 8)",
        )
        fulfil.add_argument("--orders", type=_positive, default=4000, help="orders per phase")
        fulfil.add_argument("--pgbench-seconds", type=_positive, default=15)
        fulfil.add_argument(
            "--reuse", action="store_true", help="keep an existing leb_bench database and its lines"
        )
        fulfil.add_argument("--no-pgbench", action="store_true", help="skip the pgbench reference")

        sweep = sub.add_parser(
            "sweep", help="seconds for one sweep over many lines of which few are due"
        )
        sweep.add_argument(
            "--database-url",
            default=DEFAULT_SERVER,
            help="PostgreSQL server (the database used is always leb_bench_sweep) or "
            "sqlite:///path (a file whose name contains 'bench', recreated)",
        )
        sweep.add_argument("--lines", type=_positive, default=1_000_000)
        sweep.add_argument("--due", type=_positive, default=10_000)
        sweep.add_argument(
            "--workers",
            type=_positive,
            default=1,
            help="sweep processes at once (they split the due lines with SKIP LOCKED)",
        )
        sweep.add_argument(
            "--compare-lines",
            type=int,
            default=-1,
            help="also run with this many lines and the same --due (default: a tenth of --lines; "
            "0: no comparison)",
        )

        reminders = sub.add_parser(
            "reminders",
            help="seconds for one reminder scan over many lines of which some are due",
        )
        reminders.add_argument(
            "--database-url",
            default=DEFAULT_SERVER,
            help=f"PostgreSQL server (the database used is always {REMINDERS_DATABASE}) or "
            "sqlite:///path (a file whose name contains 'bench', recreated)",
        )
        reminders.add_argument("--lines", type=_positive, default=1_000_000)
        reminders.add_argument(
            "--due",
            type=_positive,
            default=100_000,
            help="lines a reminder fell due for since the last scan",
        )
        reminders.add_argument(
            "--compare-lines",
            type=int,
            default=-1,
            help="also run with this many lines and the same --due (default: a tenth of --lines; "
            "0: no comparison)",
        )

        agents = sub.add_parser(
            "agents",
            help="agent top-ups/s on one hot float: service layer against pgbench, and signed "
            "HTTP requests to gunicorn",
        )
        agents.add_argument(
            "--database-url",
            default=DEFAULT_SERVER,
            help=f"PostgreSQL server (the database used is always {AGENTS_DATABASE}; pgbench uses "
            f"{AGENTS_PGBENCH_DATABASE}) or sqlite:///path (a file whose name contains 'bench', "
            "recreated)",
        )
        agents.add_argument(
            "--clients",
            type=_positive,
            default=None,
            help="service-layer client processes, and pgbench's clients (PostgreSQL; default 8)",
        )
        amount = agents.add_mutually_exclusive_group()
        amount.add_argument(
            "--seconds", type=_positive, default=None, help="service-layer run time (default 20)"
        )
        amount.add_argument(
            "--topups", type=_positive, default=None, help="service-layer top-ups in all"
        )
        agents.add_argument(
            "--lines", type=_positive, default=2000, help="lines the top-ups go round"
        )
        agents.add_argument("--pgbench-seconds", type=_positive, default=15)
        agents.add_argument("--no-pgbench", action="store_true", help="skip the pgbench reference")
        agents.add_argument("--http-seconds", type=_positive, default=20, help="timed HTTP run")
        agents.add_argument(
            "--http-warmup", type=float, default=3.0, help="seconds sent before the timing starts"
        )
        agents.add_argument(
            "--http-connections",
            type=_positive,
            default=16,
            help="concurrent keep-alive connections of the load generator",
        )
        agents.add_argument(
            "--http-processes",
            type=_positive,
            default=2,
            help="load generator processes the connections are spread over",
        )
        agents.add_argument(
            "--web-workers", type=_positive, default=4, help="gunicorn worker processes"
        )
        agents.add_argument(
            "--web-threads", type=_positive, default=2, help="threads per gunicorn worker"
        )
        agents.add_argument("--no-http", action="store_true", help="skip the HTTP phase")

        web = sub.add_parser(
            "http",
            help="the public quick check and a whole API top-up paid at the sandbox, through "
            "gunicorn, beside the same operations called in process",
        )
        web.add_argument(
            "--database-url",
            default=DEFAULT_SERVER,
            help=f"PostgreSQL server (the database used is always {HTTP_DATABASE}) or "
            "sqlite:///path (a file whose name contains 'bench', recreated)",
        )
        web.add_argument(
            "--scenario",
            choices=[*HTTP_SCENARIOS, "all"],
            default="all",
            help="quick-check, topup or all (default)",
        )
        web.add_argument(
            "--seconds", type=float, default=15.0, help="timed window of each scenario"
        )
        web.add_argument(
            "--warmup", type=float, default=3.0, help="seconds of load before the window"
        )
        web.add_argument(
            "--connections",
            type=_positive,
            default=16,
            help="concurrent keep-alive connections of the load generator",
        )
        web.add_argument(
            "--processes",
            type=_positive,
            default=2,
            help="load generator processes the connections are spread over, and the "
            "service layer's client processes",
        )
        web.add_argument(
            "--web-workers", type=_positive, default=4, help="gunicorn worker processes"
        )
        web.add_argument(
            "--web-threads", type=_positive, default=2, help="threads per gunicorn worker"
        )
        web.add_argument(
            "--lines", type=_positive, default=2000, help="lines the numbers are taken from"
        )

        every = sub.add_parser(
            "all",
            help="every benchmark one after another, then a summary table (PostgreSQL)",
        )
        every.add_argument(
            "--database-url",
            default=DEFAULT_SERVER,
            help="the PostgreSQL server every benchmark uses (each its own databases)",
        )
        every.add_argument(
            "--quick",
            action="store_true",
            help="small parameters (docs/performance.md), a few minutes in all",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.summary: list[SummaryRow] = []
        # `leb bench all`: a database migrated once, copied for each benchmark.
        self.template: str | None = None
        if options["bench"] == "all":
            try:
                self.every(options)
            except BenchError as exc:
                raise CommandError(str(exc)) from exc
            return
        self.run_bench(options["bench"], options)

    def run_bench(self, bench: str, options: dict[str, Any]) -> None:
        runs: dict[str, Callable[[dict[str, Any]], None]] = {
            "fulfil": self.fulfil,
            "sweep": self.sweep,
            "reminders": self.reminders,
            "agents": self.agents,
            "http": self.http,
        }
        try:
            runs[bench](options)
        except BenchError as exc:
            raise CommandError(str(exc)) from exc

    def fresh_database(self, url: str) -> None:
        dbadmin.fresh_database(url, None if dbadmin.is_sqlite(url) else self.template)

    def row(self, bench: str, figure: str, ratio: str, goal: str, verdict: str) -> None:
        self.summary.append(SummaryRow(bench, figure, ratio, goal, verdict))

    def say(self, message: str = "") -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def _target(self, database_url: str, name: str) -> str:
        if dbadmin.is_sqlite(database_url):
            path = str(dbadmin.parse(database_url)["NAME"])
            if "bench" not in Path(path).name:
                raise CommandError(
                    f"refusing to recreate {path}: use a file whose name contains 'bench'"
                )
            return database_url
        return dbadmin.with_database(database_url, name)

    def _header(self, database_url: str) -> None:
        if dbadmin.is_sqlite(database_url):
            import sqlite3

            server = f"SQLite {sqlite3.sqlite_version}"
        else:
            server = f"PostgreSQL {dbadmin.postgres_version(database_url)}"
        self.say(f"machine: {_machine()}; {server}; load average {load_average()}")

    # --- fulfil ---------------------------------------------------------------

    def fulfil(self, options: dict[str, Any]) -> None:
        url = self._target(options["database_url"], "leb_bench")
        sqlite = dbadmin.is_sqlite(url)
        clients = 1 if sqlite else (options["clients"] or 8)
        orders = options["orders"]
        self._header(url)
        if sqlite and (options["clients"] or 1) != 1:
            self.say("SQLite: one process (writers serialise on the database lock anyway)")
        if options["reuse"] and not sqlite and dbadmin.postgres_database_exists(url):
            self.say("reusing leb_bench")
        else:
            self.say("creating and migrating the benchmark database")
            self.fresh_database(url)
        result = call_in_child(url, "leb.ops.bench.fulfil:run_verbose", orders, clients, url)
        self.say("")
        self.say(f"seeding: {result.seed_seconds:.1f} s (not timed below)")
        for phase in result.phases:
            self.say(
                f"{phase.name:>6}: {phase.orders} orders in {phase.seconds:.2f} s = "
                f"{phase.rate:,.0f} orders/s ({clients} client(s)); latency p50 {phase.p50_ms:.1f} ms, "
                f"p95 {phase.p95_ms:.1f} ms, p99 {phase.p99_ms:.1f} ms; "
                f"{phase.retries} retries, {phase.errors} errors"
            )
            if phase.first_error:
                self.say(f"        first error: {phase.first_error}")
        self.say("")
        driver = "stdlib sqlite3" if sqlite else "psycopg, client-side binding like Django"
        for raw in result.raw:
            orm = result.phase(raw.name)
            ratio = orm.rate / raw.rate if raw.rate else 0.0
            goal = f" (goal >= {SQLITE_GOAL}: {_verdict(ratio, SQLITE_GOAL)})" if sqlite else ""
            self.say(
                f"{raw.name:>6}: the same {raw.statements} statements in {raw.transactions} "
                f"transactions per order through {driver}: {raw.rate:,.0f} orders/s; "
                f"ORM/raw = {ratio:.2f}{goal}"
            )
            if sqlite:
                self.row(
                    f"fulfil {raw.name}",
                    f"{orm.rate:,.0f} orders/s",
                    f"{ratio:.2f} x raw sqlite3",
                    f">= {SQLITE_GOAL} x raw",
                    _verdict(ratio, SQLITE_GOAL),
                )
        if not sqlite and not options["no_pgbench"]:
            self.say("")
            self.say(
                f"pgbench -i -s 1, then -b tpcb-like -c {clients} -j {clients} -T {options['pgbench_seconds']} -n"
            )
            pgbench = dbadmin.run_pgbench(url, clients=clients, seconds=options["pgbench_seconds"])
            self.say(f"pgbench: {pgbench.tps:,.0f} tps ({pgbench.transactions} transactions)")
            spread = result.phase("spread").rate / pgbench.tps
            hot = result.phase("hot").rate / pgbench.tps
            self.say(
                f"spread/pgbench = {spread:.3f} (goal >= {SPREAD_GOAL}: {_verdict(spread, SPREAD_GOAL)})"
            )
            self.say(f"   hot/pgbench = {hot:.3f} (goal >= {HOT_GOAL}: {_verdict(hot, HOT_GOAL)})")
            for name, share, wanted in (("spread", spread, SPREAD_GOAL), ("hot", hot, HOT_GOAL)):
                self.row(
                    f"fulfil {name}",
                    f"{result.phase(name).rate:,.0f} orders/s ({clients} clients)",
                    f"{share:.3f} x pgbench",
                    f">= {wanted} x pgbench",
                    _verdict(share, wanted),
                )
            for raw in result.raw:
                self.say(
                    f"{raw.name:>6} raw/pgbench = {raw.rate / pgbench.tps:.3f} (for reference)"
                )
        self._finish(result.verify_ok, result.verify_summary, result.verify_problems)
        expected = 2 * orders
        if result.fulfilled != expected or any(p.errors for p in result.phases):
            raise CommandError(f"{result.fulfilled} orders fulfilled, expected {expected}")

    def _finish(self, ok: bool, summary: str, problems: list[str]) -> None:
        self.say("")
        for problem in problems:
            self.stderr.write(f"FAIL {problem}")
        if not ok:
            raise CommandError(f"ledger verify on the benchmark database: FAILED; {summary}")
        self.say(f"ledger verify on the benchmark database: OK; {summary}")

    def _size_ratio(self, results: list[Any]) -> str:
        if len(results) == 2 and results[1].seconds:
            return (
                f"{results[0].seconds / results[1].seconds:.2f} x for "
                f"{results[0].lines / results[1].lines:.0f} x the lines"
            )
        return "-"

    # --- sweep ------------------------------------------------------------------

    def sweep(self, options: dict[str, Any]) -> None:
        url = self._target(options["database_url"], "leb_bench_sweep")
        lines, due = options["lines"], options["due"]
        compare = options["compare_lines"]
        if compare < 0:
            compare = lines // 10
        sizes = [lines] + ([compare] if compare and compare != lines else [])
        if any(size < due for size in sizes):
            raise CommandError("--due must not exceed --lines or --compare-lines")
        self._header(url)
        workers = options["workers"]
        if dbadmin.is_sqlite(url) and workers > 1:
            self.say("SQLite: one sweep worker (there is no SKIP LOCKED to split the lines)")
            workers = 1
        results = []
        for size in sizes:
            self.say(f"creating and migrating the benchmark database for {size:,} lines")
            self.fresh_database(url)
            result = call_in_child(url, "leb.ops.bench.sweep:run_verbose", size, due, workers, url)
            results.append(result)
            self.say("")
            self.say(f"EXPLAIN of the sweep's due-lines query ({size:,} lines, {due:,} due):")
            for row in result.plan:
                self.say(f"    {row}")
            self.say(
                f"partial index lines_line_due_idx used: {'yes' if result.uses_due_index else 'NO'}"
            )
            self._finish(result.verify_ok, result.verify_summary, result.verify_problems)
            if not result.complete:
                raise CommandError(
                    f"the sweep did not do what was seeded: {result.swept_lines} lines, "
                    f"{result.transitions} transitions, {result.terminated} terminated, "
                    f"forfeited {result.forfeited_minor}; expected {due}, "
                    f"{result.expected_transitions}, {result.expected_terminated}, "
                    f"{result.expected_forfeited}"
                )
            self.say("")
        self.say(
            f"{'lines':>12} {'due':>8} {'transitions':>12} {'terminated':>11} "
            f"{'forfeited HKD':>14} {'workers':>8} {'seed s':>8} {'sweep s':>8} {'due lines/s':>12}"
        )
        for result in results:
            rate = result.swept_lines / result.seconds if result.seconds else 0.0
            self.say(
                f"{result.lines:>12,} {result.due:>8,} {result.transitions:>12,} "
                f"{result.terminated:>11,} {result.forfeited_minor.get('HKD', 0) / 100:>14,.2f} "
                f"{result.workers:>8} {result.seed_seconds:>8.1f} {result.seconds:>8.3f} "
                f"{rate:>12,.0f}"
            )
        if len(results) == 2 and results[1].seconds:
            self.say(
                f"sweep time ratio ({results[0].lines:,} / {results[1].lines:,} lines, same due): "
                f"{results[0].seconds / results[1].seconds:.2f} "
                f"(lines ratio {results[0].lines / results[1].lines:.0f})"
            )
        first = results[0]
        # The goal set for the nearer size: ten million lines have their own.
        goal_lines, goal_due = (
            (10_000_000, 100_000) if first.lines >= 10_000_000 else (1_000_000, 10_000)
        )
        goal_seconds = SWEEP_GOALS[goal_lines, goal_due]
        goal = f"< {goal_seconds:.0f} s for {goal_due:,} due of {goal_lines:,}"
        verdict = _verdict(first.seconds, goal_seconds, below=True)
        scaled = first.vendor != "postgresql" or (first.lines, first.due) != (goal_lines, goal_due)
        self.say(
            f"goal: < {goal_seconds:.0f} s for {first.due:,} due among {first.lines:,}: "
            f"{first.seconds:.3f} s, {verdict}"
            + (
                f" (the goal is set for {goal_due:,} due among {goal_lines:,} on PostgreSQL)"
                if scaled
                else ""
            )
        )
        self.row(
            "sweep",
            f"{first.seconds:.3f} s for {first.due:,} due of {first.lines:,} ({workers} worker(s))",
            self._size_ratio(results),
            goal,
            verdict + (" (smaller run)" if scaled else ""),
        )
        # On a small table where many lines are due a sequential scan is the
        # right plan; among many lines the sweep must go through the index.
        if first.lines >= 10 * first.due and not first.uses_due_index:
            raise CommandError("the due-lines query does not use lines_line_due_idx")

    # --- reminders ----------------------------------------------------------------

    def reminders(self, options: dict[str, Any]) -> None:
        url = self._target(options["database_url"], REMINDERS_DATABASE)
        lines, due = options["lines"], options["due"]
        compare = options["compare_lines"]
        if compare < 0:
            compare = lines // 10
        sizes = [lines] + ([compare] if compare and compare != lines else [])
        if any(size < due for size in sizes):
            raise CommandError("--due must not exceed --lines or --compare-lines")
        self._header(url)
        results = []
        for size in sizes:
            self.say(f"creating and migrating the benchmark database for {size:,} lines")
            self.fresh_database(url)
            result = call_in_child(url, "leb.ops.bench.reminders:run_verbose", size, due)
            results.append(result)
            self.say("")
            self.say(f"EXPLAIN of the scan's first lines query ({size:,} lines, {due:,} due):")
            for row in result.plan:
                self.say(f"    {row}")
            self.say(
                "partial index lines_line_valid_until_idx used: "
                f"{'yes' if result.uses_valid_until_index else 'NO'}"
            )
            if not result.complete:
                raise CommandError(
                    f"the scan did not do what was seeded: {result.sent} reminders sent, "
                    f"{result.rows_sent} rows, {result.rows_notifications} notifications; "
                    f"expected {due} of each"
                )
            self.say("")
        self.say(
            f"{'lines':>12} {'due':>8} {'sent':>8} {'notifications':>14} {'batches':>8} "
            f"{'seed s':>8} {'scan s':>8} {'notify_many s':>14} {'reminders/s':>12}"
        )
        for result in results:
            self.say(
                f"{result.lines:>12,} {result.due:>8,} {result.sent:>8,} "
                f"{result.rows_notifications:>14,} {result.batches:>8} "
                f"{result.seed_seconds:>8.1f} {result.seconds:>8.3f} "
                f"{result.notify_seconds:>14.3f} {result.rate:>12,.0f}"
            )
        if len(results) == 2 and results[1].seconds:
            self.say(
                f"scan time ratio ({results[0].lines:,} / {results[1].lines:,} lines, same due): "
                f"{results[0].seconds / results[1].seconds:.2f} "
                f"(lines ratio {results[0].lines / results[1].lines:.0f})"
            )
        first = results[0]
        verdict = _verdict(first.seconds, REMINDERS_GOAL_SECONDS, below=True)
        scaled = first.vendor != "postgresql" or (first.lines, first.due) != (1_000_000, 100_000)
        self.say(
            f"goal: < {REMINDERS_GOAL_SECONDS:.0f} s for {first.due:,} due among "
            f"{first.lines:,}: {first.seconds:.3f} s, {verdict}"
            + (" (the goal is set for 100,000 due among 1,000,000 on PostgreSQL)" if scaled else "")
        )
        self.row(
            "reminders",
            f"{first.seconds:.3f} s for {first.due:,} due of {first.lines:,}",
            self._size_ratio(results),
            "< 10 s for 100,000 due of 1,000,000",
            verdict + (" (smaller run)" if scaled else ""),
        )
        if first.lines >= 10 * first.due and not first.uses_valid_until_index:
            raise CommandError("the scan's lines query does not use lines_line_valid_until_idx")

    # --- agents -------------------------------------------------------------------

    def agents(self, options: dict[str, Any]) -> None:
        url = self._target(options["database_url"], AGENTS_DATABASE)
        sqlite = dbadmin.is_sqlite(url)
        clients = 1 if sqlite else (options["clients"] or 8)
        count = options["topups"]
        seconds = None if count else (options["seconds"] or 20)
        self._header(url)
        if sqlite and (options["clients"] or 1) != 1:
            self.say("SQLite: one service-layer client (writers serialise on the database lock)")
        self.say("creating and migrating the benchmark database")
        self.fresh_database(url)
        # The key secrets derive from the pepper: the seeding child and the
        # server must share it (each benchmark process has its own secret key).
        pepper = secrets.token_urlsafe(32)
        with procs.environment({"LEB_AGENTS_KEY_PEPPER": pepper}):
            result = call_in_child(
                url,
                "leb.ops.bench.agents:run_verbose",
                options["lines"],
                clients,
                count,
                seconds,
                url,
            )
        seeded, service = result.seeded, result.service
        self.say("")
        self.say(
            f"seeding: {seeded.seed_seconds:.1f} s (not timed); agent {seeded.code}, "
            f"{len(seeded.msisdns)} lines, every top-up from its one float"
        )
        self.say(
            f"service layer: {service.topups} top-ups in {service.seconds:.2f} s = "
            f"{service.rate:,.1f} top-ups/s ({service.clients} client(s)); latency p50 "
            f"{service.p50_ms:.1f} ms, p99 {service.p99_ms:.1f} ms; {service.retries} retries, "
            f"{service.errors} errors"
        )
        if service.first_error:
            self.say(f"        first error: {service.first_error}")
        if not sqlite and not options["no_pgbench"]:
            self.say("")
            self.say(
                f"pgbench -i -s 1, then -b tpcb-like -c {clients} -j {clients} "
                f"-T {options['pgbench_seconds']} -n"
            )
            pgbench = dbadmin.run_pgbench(
                url,
                clients=clients,
                seconds=options["pgbench_seconds"],
                database=AGENTS_PGBENCH_DATABASE,
            )
            self.say(f"pgbench: {pgbench.tps:,.0f} tps ({pgbench.transactions} transactions)")
            hot = service.rate / pgbench.tps
            self.say(
                f"hot float/pgbench = {hot:.3f} "
                f"(goal >= {AGENTS_HOT_GOAL}: {_verdict(hot, AGENTS_HOT_GOAL)})"
            )
            self.row(
                "agents",
                f"{service.rate:,.1f} top-ups/s on one float ({clients} clients)",
                f"{hot:.3f} x pgbench",
                f">= {AGENTS_HOT_GOAL} x pgbench",
                _verdict(hot, AGENTS_HOT_GOAL),
            )
        expected = {service.tag: service.external_ids}
        if not options["no_http"]:
            http = self._agents_http(url, pepper, seeded, options)
            expected[http.tag] = http.done
            self.say("")
            self.say(
                f"HTTP: {http.completed} signed top-ups in {http.seconds:.0f} s = {http.rate:,.1f}/s "
                f"({http.connections} connections from {http.processes} load generator "
                f"process(es); gunicorn {options['web_workers']} workers x "
                f"{options['web_threads']} threads); latency p50 {http.p50_ms:.1f} ms, "
                f"p99 {http.p99_ms:.1f} ms; {http.errors} errors; statuses {http.statuses}"
            )
            if http.first_error:
                self.say(f"        first error: {http.first_error}")
            self.say(f"      beside the service layer's {service.rate:,.1f} top-ups/s")
            rate_ok = _verdict(http.rate, AGENTS_HTTP_RATE_GOAL)
            p99_ok = _verdict(http.p99_ms, AGENTS_HTTP_P99_GOAL_MS, below=True)
            self.say(
                f"goal: >= {AGENTS_HTTP_RATE_GOAL:.0f} signed top-ups/s: {rate_ok}; "
                f"p99 < {AGENTS_HTTP_P99_GOAL_MS:.0f} ms: {p99_ok}"
            )
            self.row(
                "agents HTTP",
                f"{http.rate:,.1f} signed top-ups/s, p99 {http.p99_ms:,.0f} ms",
                f"{http.rate / service.rate:.2f} x service" if service.rate else "-",
                f">= {AGENTS_HTTP_RATE_GOAL:.0f}/s, p99 < {AGENTS_HTTP_P99_GOAL_MS:.0f} ms",
                "met" if rate_ok == p99_ok == "met" else "MISSED",
            )
        verified = call_in_child(
            url, "leb.ops.bench.agents:verify_in_child", dataclasses.asdict(seeded), expected
        )
        self.say("")
        self.say(
            f"books: {verified.completed} completed top-ups, each once; float "
            f"{verified.float_available} = deposit less wholesale sold "
            f"({verified.float_expected}); never negative"
        )
        self._finish(verified.ok, verified.summary, verified.problems)
        if service.errors:
            raise CommandError(f"{service.errors} service-layer top-ups failed")

    def _agents_http(
        self, url: str, pepper: str, seeded: Any, options: dict[str, Any]
    ) -> loadgen.LoadResult:
        tag = "http" + secrets.token_hex(3)
        with tempfile.TemporaryDirectory(prefix="leb-bench-agents-") as var:
            var_dir = Path(var)
            env = loadgen.server_environment(
                url, var_dir, pepper=pepper, overrides={"LEB_AGENTS_API_RATE": ""}
            )
            self.say("")
            self.say(
                f"starting gunicorn ({options['web_workers']} gthread workers x "
                f"{options['web_threads']} threads) on {AGENTS_DATABASE if not dbadmin.is_sqlite(url) else url}"
            )
            server = loadgen.start_server(
                env, var_dir, workers=options["web_workers"], threads=options["web_threads"]
            )
            params = {
                "key_id": seeded.key_id,
                "secret": seeded.secret,
                "plan_code": seeded.plan_code,
            }
            try:
                loadgen.wait_ready(
                    server,
                    loadgen.BALANCE_PATH,
                    options["web_workers"],
                    loadgen.agent_balance_headers(seeded.key_id, seeded.secret),
                )
                slots = options["web_workers"] * options["web_threads"]
                warmed = loadgen.warm_up(
                    server,
                    loadgen.AGENT_TOPUP,
                    params,
                    seeded.msisdns[:1],
                    tag=tag,
                    count=2 * slots,
                )
                self.say(
                    f"{len(warmed)} top-ups one at a time to warm the workers, then signed "
                    f"POST {loadgen.PATH} for {options['http_warmup']:.0f} s (not timed) and "
                    f"{options['http_seconds']} s"
                )
                result = loadgen.run_load(
                    server.port,
                    loadgen.AGENT_TOPUP,
                    params,
                    seeded.msisdns,
                    tag=tag,
                    seconds=options["http_seconds"],
                    warmup=options["http_warmup"],
                    connections=options["http_connections"],
                    processes=options["http_processes"],
                )
            finally:
                loadgen.stop_server(server)
            result.done.extend(warmed)
            if server.process.returncode not in (0, -15):
                self.say(f"gunicorn log:\n{server.tail()}")
        return result

    # --- http ---------------------------------------------------------------------

    def http(self, options: dict[str, Any]) -> None:
        url = self._target(options["database_url"], HTTP_DATABASE)
        sqlite = dbadmin.is_sqlite(url)
        wanted = list(HTTP_SCENARIOS) if options["scenario"] == "all" else [options["scenario"]]
        seconds, warmup = options["seconds"], options["warmup"]
        if seconds <= 0 or warmup < 0:
            raise CommandError("--seconds must be above 0 and --warmup not below 0")
        clients = 1 if sqlite else options["processes"]
        self._header(url)
        self.say("creating and migrating the benchmark database")
        self.fresh_database(url)
        # The API token is keyed with the secret key: the seeding child, the
        # service-layer children and gunicorn share one.
        secret_key = secrets.token_urlsafe(48)
        with procs.environment({SECRET_KEY_VARIABLE: secret_key}):
            seeded = call_in_child(
                url, "leb.ops.bench.web:seed_verbose", options["lines"], clients, url
            )
            self.say(
                f"seeding: {seeded.seed_seconds:.1f} s (not timed); {len(seeded.msisdns):,} "
                "active lines, plan {plan}, one customer with a personal API token".format(
                    plan=seeded.plan_code
                )
            )
            if sqlite and options["processes"] > 1:
                self.say("SQLite: one service-layer client process (writers serialise anyway)")
            services = {}
            for name in wanted:
                self.say(f"service layer: {name}, {clients} client process(es), {seconds:g} s")
                services[name] = call_in_child(
                    url,
                    "leb.ops.bench.web:service_in_child",
                    dataclasses.asdict(seeded),
                    name,
                    clients,
                    seconds,
                    warmup,
                    url,
                )
            loads = self._http_load(url, secret_key, seeded, wanted, options)
        answered = [ident for name in wanted for ident in services[name].done]
        answered += [ident for name in wanted for ident in loads[name].done]
        for name in wanted:
            self._http_report(name, loads[name], services[name], seeded, options)
        verified = call_in_child(
            url, "leb.ops.bench.web:verify_in_child", dataclasses.asdict(seeded), answered
        )
        self.say("")
        self.say(
            f"books: {verified.fulfilled:,} top-ups fulfilled, each once (one fulfilment posting, "
            f"one line event, one receipt number, one succeeded payment); orders by status "
            f"{verified.orders}"
        )
        self._finish(verified.ok, verified.summary, verified.problems)

    def _http_load(
        self,
        url: str,
        secret_key: str,
        seeded: Any,
        wanted: list[str],
        options: dict[str, Any],
    ) -> dict[str, loadgen.LoadResult]:
        sqlite = dbadmin.is_sqlite(url)
        workers, threads = options["web_workers"], options["web_threads"]
        params = {"token": seeded.token, "plan_code": seeded.plan_code}
        results = {}
        with tempfile.TemporaryDirectory(prefix="leb-bench-http-") as var:
            var_dir = Path(var)
            env = loadgen.server_environment(
                url,
                var_dir,
                secret_key=secret_key,
                overrides={LINE_CHECK_RATE_VARIABLE: ""},
            )
            self.say("")
            self.say(
                f"starting gunicorn ({workers} gthread workers x {threads} threads) on "
                f"{url if sqlite else HTTP_DATABASE}, {LINE_CHECK_RATE_VARIABLE} empty: the "
                "quick check's per-client rate limit is off for the run"
            )
            server = loadgen.start_server(env, var_dir, workers=workers, threads=threads)

            def groups() -> dict[str, list[int]]:
                found = {"gunicorn": cpu.descendants(server.process.pid)}
                if not sqlite:
                    backends, shared = cpu.postgres_processes(HTTP_DATABASE)
                    found["PostgreSQL backends"] = backends
                    found["PostgreSQL's shared processes"] = shared
                return found

            try:
                loadgen.wait_ready(server, scenarios.check_path(seeded.msisdns[0]), workers)
                for name in wanted:
                    scenario, plural, _one = HTTP_SCENARIOS[name]
                    tag = "http" + secrets.token_hex(3)
                    warmed = loadgen.warm_up(
                        server,
                        scenario,
                        params,
                        seeded.msisdns,
                        tag=tag,
                        count=2 * workers * threads,
                    )
                    self.say(
                        f"{name}: {2 * workers * threads} {plural} one at a time to warm the "
                        f"workers, then {options['warmup']:g} s of load not timed and "
                        f"{options['seconds']:g} s timed"
                    )
                    result = loadgen.run_load(
                        server.port,
                        scenario,
                        params,
                        seeded.msisdns,
                        tag=tag,
                        seconds=options["seconds"],
                        warmup=options["warmup"],
                        connections=options["connections"],
                        processes=options["processes"],
                        cpu_groups=groups,
                    )
                    result.done.extend(warmed)
                    results[name] = result
            finally:
                loadgen.stop_server(server)
            if server.process.returncode not in (0, -15):
                self.say(f"gunicorn log:\n{server.tail()}")
        return results

    def _http_report(
        self,
        name: str,
        http: loadgen.LoadResult,
        service: Any,
        seeded: Any,
        options: dict[str, Any],
    ) -> None:
        _scenario, plural, one = HTTP_SCENARIOS[name]
        self.say("")
        if name == QUICK_CHECK:
            self.say(
                f"{name}: GET {scenarios.CHECK_PATH}?number=... over {len(seeded.msisdns):,} "
                f"numbers; the per-client rate limit is off ({LINE_CHECK_RATE_VARIABLE} empty)"
            )
        else:
            self.say(
                f"{name}: POST {scenarios.ORDERS_PATH} (bearer token, unique Idempotency-Key), "
                "POST /api/v1/orders/{id}/payments, GET and POST the sandbox checkout "
                "(CSRF cookie and form token, card 4242...), GET /api/v1/payments/{id} until "
                "the order is fulfilled"
            )
        self.say(
            f"  HTTP: {http.completed:,} {plural} in {http.seconds:g} s = {http.rate:,.1f} "
            f"{plural}/s; {http.requests:,} requests = {http.request_rate:,.1f} requests/s "
            f"({http.connections} connections from {http.processes} load generator process(es); "
            f"gunicorn {options['web_workers']} workers x {options['web_threads']} threads)"
        )
        self.say(
            f"        latency per {one} p50 {http.p50_ms:.1f} ms, p99 {http.p99_ms:.1f} ms; "
            f"per request p50 {http.request_p50_ms:.1f} ms, p99 {http.request_p99_ms:.1f} ms"
        )
        self.say(f"        statuses {http.statuses}; {http.failed} {plural} failed")
        if http.first_error:
            self.say(f"        first error: {http.first_error}")
        self.say(
            f"  service layer: {service.completed:,} {plural} in {service.seconds:g} s = "
            f"{service.rate:,.1f} {plural}/s ({service.clients} client process(es), in process); "
            f"p50 {service.p50_ms:.1f} ms, p99 {service.p99_ms:.1f} ms; {service.failed} failed"
        )
        if service.first_error:
            self.say(f"        first error: {service.first_error}")
        ratio = http.rate / service.rate if service.rate else 0.0
        self.say(f"  HTTP/service = {ratio:.2f}")
        for line in describe_cpu(http.cpu, http.completed, one):
            self.say(f"  {line}")
        goal = HTTP_RATE_GOALS[name]
        rate_ok = _verdict(http.rate, goal)
        p99_ok = _verdict(http.request_p99_ms, HTTP_P99_GOAL_MS, below=True)
        self.say(
            f"  goal: >= {goal:,.0f} {plural}/s: {rate_ok}; p99 < {HTTP_P99_GOAL_MS:.0f} ms per "
            f"request: {p99_ok}"
        )
        self.row(
            f"http {name}",
            f"{http.rate:,.1f} {plural}/s, p99 {http.request_p99_ms:,.1f} ms per request",
            f"{ratio:.2f} x service",
            f">= {goal:,.0f}/s, p99 < {HTTP_P99_GOAL_MS:.0f} ms",
            "met" if rate_ok == p99_ok == "met" else "MISSED",
        )

    # --- all ------------------------------------------------------------------------

    def bench_options(self, bench: str, argv: list[str]) -> dict[str, Any]:
        """The options `leb bench <bench> <argv>` would run with."""
        parser = self.create_parser("leb", "bench")
        return vars(parser.parse_args([bench, *argv]))

    def every(self, options: dict[str, Any]) -> None:
        server = options["database_url"]
        if dbadmin.is_sqlite(server):
            raise CommandError(
                "leb bench all needs PostgreSQL: give --database-url postgres://… "
                "(each benchmark can also be run alone on SQLite)"
            )
        began = time.monotonic()
        template = dbadmin.with_database(server, dbadmin.TEMPLATE_DATABASE)
        self.say(
            f"migrating {dbadmin.TEMPLATE_DATABASE} once; each benchmark's database is a copy of it"
        )
        dbadmin.fresh_database(template)
        self.template = dbadmin.TEMPLATE_DATABASE
        failed = []
        try:
            for bench in BENCHES:
                argv = [*(QUICK[bench] if options["quick"] else []), "--database-url", server]
                self.say("")
                self.say(f"=== leb bench {bench} {' '.join(argv)}")
                bench_began = time.monotonic()
                try:
                    self.run_bench(bench, self.bench_options(bench, argv))
                except CommandError as exc:
                    failed.append(bench)
                    self.stderr.write(f"leb bench {bench} failed: {exc}")
                    self.row(bench, "failed", "-", "-", "FAILED")
                self.say(f"=== {bench}: {time.monotonic() - bench_began:.0f} s")
        finally:
            self.template = None
            dbadmin.drop_postgres(template)
        elapsed = time.monotonic() - began
        self.say("")
        self.say(
            f"summary of leb bench all{' --quick' if options['quick'] else ''} "
            f"({elapsed // 60:.0f} min {elapsed % 60:.0f} s; {_machine()}; load average "
            f"{load_average()}):"
        )
        for line in render_summary(self.summary):
            self.say(line)
        if failed:
            raise CommandError(f"failed: {', '.join(failed)}")


def load_average() -> str:
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "?"
