"""`leb bench fulfil`, `sweep`, `reminders` and `agents`: see docs/performance.md.

The command itself never touches the benchmark database through Django: it
creates the database, then runs migrations, seeding and timing in spawned
processes that Django was set up for that database from the start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leb.ops.bench import dbadmin, loadgen
from leb.ops.bench.procs import BenchError, call_in_child

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/leb_bench"
SPREAD_GOAL = 0.5
HOT_GOAL = 0.25
SQLITE_GOAL = 0.8
SWEEP_GOAL_SECONDS = 1.0
REMINDERS_GOAL_SECONDS = 10.0
# The reminder benchmark shares the sweep's scratch database (both recreate it on every run).
REMINDERS_DATABASE = "leb_bench_sweep"
AGENTS_DATABASE = "leb_bench_agents"
AGENTS_PGBENCH_DATABASE = "leb_pgbench_agents"
AGENTS_HOT_GOAL = 0.25
AGENTS_HTTP_RATE_GOAL = 500.0
AGENTS_HTTP_P99_GOAL_MS = 100.0


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


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Variables the spawned children inherit, for the duration only."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _verdict(value: float, goal: float, *, below: bool = False) -> str:
    met = value < goal if below else value >= goal
    return "met" if met else "MISSED"


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

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["bench"] == "fulfil":
                self.fulfil(options)
            elif options["bench"] == "agents":
                self.agents(options)
            elif options["bench"] == "reminders":
                self.reminders(options)
            else:
                self.sweep(options)
        except BenchError as exc:
            raise CommandError(str(exc)) from exc

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
        self.say(f"machine: {_machine()}; {server}")

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
            dbadmin.fresh_database(url)
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
            dbadmin.fresh_database(url)
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
        verdict = _verdict(first.seconds, SWEEP_GOAL_SECONDS, below=True)
        if first.vendor != "postgresql" or (first.lines, first.due) != (1_000_000, 10_000):
            verdict += " (the goal is set for 10,000 due among 1,000,000 on PostgreSQL)"
        self.say(
            f"goal: < {SWEEP_GOAL_SECONDS:.0f} s for {first.due:,} due among {first.lines:,}: "
            f"{first.seconds:.3f} s, {verdict}"
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
            dbadmin.fresh_database(url)
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
        if first.vendor != "postgresql" or (first.lines, first.due) != (1_000_000, 100_000):
            verdict += " (the goal is set for 100,000 due among 1,000,000 on PostgreSQL)"
        self.say(
            f"goal: < {REMINDERS_GOAL_SECONDS:.0f} s for {first.due:,} due among "
            f"{first.lines:,}: {first.seconds:.3f} s, {verdict}"
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
        dbadmin.fresh_database(url)
        # The key secrets derive from the pepper: the seeding child and the
        # server must share it (each benchmark process has its own secret key).
        pepper = secrets.token_urlsafe(32)
        with _environment(LEB_AGENTS_KEY_PEPPER=pepper):
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
        expected = {service.tag: service.external_ids}
        if not options["no_http"]:
            http = self._agents_http(url, pepper, seeded, options)
            expected[http.tag] = http.sold
            self.say("")
            self.say(
                f"HTTP: {http.created} signed top-ups in {http.seconds:.0f} s = {http.rate:,.1f}/s "
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
            env = loadgen.server_environment(url, var_dir, pepper)
            self.say("")
            self.say(
                f"starting gunicorn ({options['web_workers']} gthread workers x "
                f"{options['web_threads']} threads) on {AGENTS_DATABASE if not dbadmin.is_sqlite(url) else url}"
            )
            server = loadgen.start_server(
                env, var_dir, workers=options["web_workers"], threads=options["web_threads"]
            )
            try:
                loadgen.wait_ready(server, seeded.key_id, seeded.secret, options["web_workers"])
                slots = options["web_workers"] * options["web_threads"]
                warmed = loadgen.warm_up(
                    server,
                    key_id=seeded.key_id,
                    secret=seeded.secret,
                    plan_code=seeded.plan_code,
                    msisdn=seeded.msisdns[0],
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
                    key_id=seeded.key_id,
                    secret=seeded.secret,
                    plan_code=seeded.plan_code,
                    msisdns=seeded.msisdns,
                    tag=tag,
                    seconds=options["http_seconds"],
                    warmup=options["http_warmup"],
                    connections=options["http_connections"],
                    processes=options["http_processes"],
                )
            finally:
                loadgen.stop_server(server)
            result.sold.extend(warmed)
            if server.process.returncode not in (0, -15):
                self.say(f"gunicorn log:\n{server.tail()}")
        return result
