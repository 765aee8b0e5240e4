"""`leb torture race` and `leb torture crash`: see docs/reliability.md.

The command never touches the torture database through Django itself: it
recreates it, then seeds, runs and checks in spawned processes (and, for the
crash run, real gunicorn and `leb worker` processes) set up for it."""

from __future__ import annotations

import tempfile
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leb.ops.bench.procs import BenchError

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/leb_torture"


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Torture the money paths on PostgreSQL: `race` (many processes at once) or "
        "`crash` (real web and worker processes killed at random); exits non-zero on any "
        "loss or double credit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        runs = parser.add_subparsers(dest="run", required=True)
        race = runs.add_parser("race", help="concurrent operations from many processes")
        race.add_argument("--processes", type=_positive, default=16)
        race.add_argument("--operations", type=_positive, default=2000)
        race.add_argument("--seed", type=int, default=1)
        crash = runs.add_parser("crash", help="top-ups while processes are killed")
        crash.add_argument("--topups", type=_positive, default=1000)
        crash.add_argument("--seed", type=int, default=1)
        crash.add_argument("--clients", type=_positive, default=4, help="load driver threads")
        crash.add_argument(
            "--kill-every",
            type=float,
            default=1.5,
            help="mean seconds between two chaos events (default: %(default)s)",
        )
        for sub in (race, crash):
            sub.add_argument(
                "--database-url",
                default=DEFAULT_DATABASE,
                help="a PostgreSQL database whose name contains 'torture'; it is dropped "
                "and created (default: %(default)s)",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        from leb.torture import runs

        url = options["database_url"]
        try:
            runs.require_postgres(url)
            self.stderr.write(f"recreating {url} …")
            runs.recreate(url)
            with tempfile.TemporaryDirectory(prefix="leb-torture-") as var_dir:
                if options["run"] == "race":
                    from leb.torture.race import Settings

                    report = runs.run_race(
                        url,
                        Settings(
                            processes=options["processes"],
                            operations=options["operations"],
                            seed=options["seed"],
                        ),
                        var_dir=var_dir,
                    )
                else:
                    from leb.torture.crash import CrashSettings, run_crash

                    report = run_crash(
                        url,
                        CrashSettings(
                            topups=options["topups"],
                            seed=options["seed"],
                            clients=options["clients"],
                            kill_every=options["kill_every"],
                        ),
                        var_dir=var_dir,
                    )
        except BenchError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(runs.render(report))
        if not report.ok:
            raise CommandError(f"{len(report.violations)} violations: see above")
