"""`leb simulate`: years of subscribers on a moving clock, through the real
actions and jobs, on a scratch database. See docs/simulation.md."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leb.ops.bench.procs import BenchError, call_in_child
from leb.simulation.config import Config
from leb.simulation.report import Report, render
from leb.simulation.scratch import prepare


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _hours(value: str) -> float:
    number = float(value)
    if not 0 < number <= 24 * 31:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Simulate subscribers (auto-keep, reminder-reactive, forgetful) for years on a "
        "scratch database and report lines lost, reminders and spend against the goals."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lines", type=_positive, default=10_000)
        parser.add_argument("--years", type=_positive, default=3)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--step-hours", type=_hours, default=24.0, help="clock step between job runs"
        )
        parser.add_argument(
            "--database-url",
            default="",
            help="sqlite:///path or postgres://.../name, recreated; the file or database "
            "name must contain 'sim' (default: a new SQLite file in a temporary directory)",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--keep", action="store_true", help="keep the temporary SQLite database"
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            scratch = prepare(options["database_url"] or None)
        except BenchError as exc:
            raise CommandError(str(exc)) from exc
        config = Config(
            lines=options["lines"],
            years=options["years"],
            seed=options["seed"],
            step_hours=options["step_hours"],
            progress=not options["no_progress"],
            database=scratch.vendor,
        )
        # Ctrl-C reaches the simulating process, which stops and reports what
        # it simulated so far; this one keeps waiting for that report.
        previous = signal.signal(signal.SIGINT, lambda _signum, _frame: None)
        try:
            report: Report = call_in_child(
                scratch.url, "leb.simulation.engine:run_in_child", config
            )
        except BenchError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            signal.signal(signal.SIGINT, previous)
            if options["keep"] and scratch.directory is not None:
                self.stderr.write(f"database kept: {scratch.url}")
            else:
                scratch.remove()
        self.stdout.write(report.dumps() if options["json"] else render(report))
        if not report.ledger_ok:
            raise CommandError("ledger verify on the simulation database failed")
