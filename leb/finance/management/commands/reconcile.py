"""`leb reconcile --date YYYY-MM-DD [--provider NAME]`: compare a day of leb's
ledger with the providers' books, print the settlement and its mismatches.
Exits 1 when there are mismatches, so a cron wrapper can alert on it."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leb.common.formatting import format_money


class Command(BaseCommand):
    help = "Reconcile one day's payments with the providers' own transaction lists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date", required=True, help="the day, YYYY-MM-DD (operator's time zone)"
        )
        parser.add_argument("--provider", default=None, help="one provider (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        from leb.finance.actions import SettlementError, do_reconcile_day

        try:
            day = date.fromisoformat(options["date"])
        except ValueError as exc:
            raise CommandError(f"--date must be YYYY-MM-DD, not {options['date']!r}") from exc
        try:
            runs = do_reconcile_day(day, options["provider"], actor="cli:reconcile")
        except SettlementError as exc:
            raise CommandError(str(exc.message)) from exc
        mismatches = 0
        for run in runs:
            currency = run.currency or "-"
            self.stdout.write(f"{run.date} {run.provider} {currency}")
            for label, ours, theirs in (
                ("captured", run.leb_captured, run.provider_captured),
                ("refunded", run.leb_refunded, run.provider_refunded),
                ("pending", run.leb_pending, run.provider_pending),
            ):
                self.stdout.write(
                    f"  {label:<9} leb {self._money(ours, run.currency):>14}"
                    f"  provider {self._money(theirs, run.currency):>14}"
                )
            self.stdout.write(
                f"  counts    leb {run.leb_captures} captures, {run.leb_refunds} refunds;"
                f" provider {run.provider_captures} captures, {run.provider_refunds} refunds;"
                f" fees {self._money(run.provider_fees, run.currency)}"
            )
            for mismatch in run.mismatches.select_related("order").order_by("kind", "pk"):
                mismatches += 1
                order = mismatch.order.public_id if mismatch.order else "-"
                self.stdout.write(
                    f"  MISMATCH {mismatch.kind} order {order} ref {mismatch.reference or '-'}"
                    f" leb {self._money(mismatch.leb_amount, run.currency)}"
                    f" provider {self._money(mismatch.provider_amount, run.currency)}"
                    f": {mismatch.detail}"
                )
        self.stdout.write(f"{mismatches} mismatch(es)")
        if mismatches:
            raise SystemExit(1)

    @staticmethod
    def _money(amount: int | None, currency: str) -> str:
        if amount is None:
            return "-"
        if not currency:
            return str(amount)
        return format_money(amount, currency, "en")
