"""`leb report liability [--from YYYY-MM --to YYYY-MM]`: the back office's
prepaid liability and breakage report as text tables."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from leb.ledger.queries import (
    LiabilityReport,
    SectionReport,
    check_month_range,
    default_month_range,
    liability_report,
    parse_month,
)


def amount_text(amount: int, currency: str) -> str:
    """Minor units as a plain decimal ("1234.50"): easy to paste into a sheet."""
    places = get_currency_precision(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


def section_lines(section: SectionReport) -> list[str]:
    currency = section.currency
    columns = section.columns
    headings = ["month", "opening", *(str(c.label) for c in columns), "closing"]
    codes = ["", "", *(", ".join(c.codes) for c in columns), ""]
    rows = [
        [
            f"{month.month:%Y-%m}",
            amount_text(month.opening, currency),
            *(amount_text(month.movement(c.key), currency) for c in columns),
            amount_text(month.closing, currency),
        ]
        for month in section.months
    ]
    rows.append(
        [
            "range",
            amount_text(section.opening, currency),
            *(amount_text(section.total(c.key), currency) for c in columns),
            amount_text(section.closing, currency),
        ]
    )
    table = [headings, codes, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headings))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    title = (
        f"{currency} {section.section.title} "
        f"[{section.account_codes}, {section.accounts} account(s)]"
    )
    return [title, line(headings), line(codes), *(line(row) for row in rows), ""]


def report_text(report: LiabilityReport) -> str:
    lines = [
        f"Prepaid liability and breakage, {report.first_month:%Y-%m} to "
        f"{report.last_month:%Y-%m} ({timezone.get_current_timezone_name()})",
        "",
    ]
    if not report.currencies:
        lines.append("No subscriber balances, forfeited balances or vouchers in the ledger.")
    for sections in report.currencies.values():
        for section in sections:
            lines.extend(section_lines(section))
    return "\n".join(lines).rstrip() + "\n"


class Command(BaseCommand):
    help = (
        "Reports from the ledger. `leb report liability [--from YYYY-MM --to YYYY-MM]`: "
        "subscriber balances, forfeited balances and voucher liability per currency and "
        "month (default: the last six months)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="report", required=True)
        liability = sub.add_parser("liability", help="prepaid liability and breakage by month")
        liability.add_argument("--from", dest="month_from", default="", help="first month, YYYY-MM")
        liability.add_argument("--to", dest="month_to", default="", help="last month, YYYY-MM")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["report"] == "liability":
            try:
                last = (
                    parse_month(options["month_to"])
                    if options["month_to"]
                    else default_month_range()[1]
                )
                first = (
                    parse_month(options["month_from"])
                    if options["month_from"]
                    else default_month_range(last)[0]
                )
                first, last = check_month_range(first, last)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            self.stdout.write(report_text(liability_report(first, last)), ending="")
