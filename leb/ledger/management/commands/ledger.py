from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leb.ledger.queries import verify_ledger


class Command(BaseCommand):
    help = "Ledger tools. `leb ledger verify` checks every invariant and exits non-zero on failure."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser(
            "verify", help="check balances, zero-sum per currency, no_negative, reversals"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            report = verify_ledger()
            for problem in report.problems:
                self.stderr.write(f"FAIL {problem}")
            totals = ", ".join(f"{cur}={total}" for cur, total in sorted(report.totals.items()))
            summary = (
                f"{report.accounts} accounts, {report.transfers} transfers; sums: {totals or '-'}"
            )
            if not report.ok:
                raise CommandError(f"ledger verify: {len(report.problems)} problem(s); {summary}")
            self.stdout.write(f"ledger verify: OK; {summary}")
