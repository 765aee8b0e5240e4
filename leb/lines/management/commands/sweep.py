from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from babel.numbers import format_currency, get_currency_precision
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _gettext_lazy

from leb.common import clock
from leb.lines.actions import SweepResult, sweep_lines

# Lazy, so help is rendered in the language active when it is shown; typed as
# str because argparse and BaseCommand are annotated with str.
gettext_lazy = cast(Callable[[str], str], _gettext_lazy)


def parse_instant(value: str) -> datetime:
    """ISO 8601; without an offset the time is taken as UTC, so a command line
    means the same instant whatever the server's time zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("%(value)s is not an ISO 8601 date and time.") % {"value": value}
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(
            _("%(value)s is not a positive whole number.") % {"value": value}
        )
    return number


def format_minor(amount: int, currency: str) -> str:
    locale = translation.to_locale(translation.get_language() or settings.LANGUAGE_CODE)
    major = Decimal(amount).scaleb(-get_currency_precision(currency))
    return format_currency(major, currency, locale=locale)


class Command(BaseCommand):
    help = gettext_lazy(
        "Persist every line status change that is due: grace, suspension, termination "
        "(balance forfeited, number quarantined), and release numbers out of quarantine."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # argparse runs regular expressions on the description: it needs a real str.
        parser.description = str(self.help)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now",
            type=parse_instant,
            help=gettext_lazy("sweep as of this ISO 8601 time (UTC if no offset); default: now"),
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=None,
            help=gettext_lazy("lines per transaction; default: LEB_SWEEP_BATCH_SIZE"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now: datetime = options["now"] or clock.now()
        batch_size: int = options["batch_size"] or settings.SWEEP_BATCH_SIZE
        result = sweep_lines(now, batch_size=batch_size)
        self.report(result, now)

    def report(self, result: SweepResult, now: datetime) -> None:
        self.stdout.write(_("Sweep as of %(now)s") % {"now": now.isoformat()})
        self.stdout.write(
            _(
                "lines: %(lines)d, transitions: %(transitions)d, terminated: %(terminated)d, "
                "numbers released: %(released)d, batches: %(batches)d"
            )
            % {
                "lines": result.lines,
                "transitions": result.transitions,
                "terminated": result.terminated,
                "released": result.numbers_released,
                "batches": result.batches,
            }
        )
        if result.forfeited_minor:
            for currency, amount in sorted(result.forfeited_minor.items()):
                self.stdout.write(
                    _("forfeited %(currency)s: %(amount)s")
                    % {"currency": currency, "amount": format_minor(amount, currency)}
                )
        else:
            self.stdout.write(_("forfeited: none"))
