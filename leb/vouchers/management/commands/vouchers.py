"""`leb vouchers generate|distribute|activate|block|expire`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _gettext_lazy
from django.utils.translation import ngettext
from tqdm import tqdm

from leb.catalog.models import Plan
from leb.common import clock
from leb.ledger.actions import LedgerError
from leb.vouchers import actions
from leb.vouchers.models import Distributor, VoucherBatch

# Lazy, so help is rendered in the language active when it is shown; typed as
# str because argparse and BaseCommand are annotated with str.
gettext_lazy = cast(Callable[[str], str], _gettext_lazy)
ACTOR = "cli"


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise CommandError(_("Give the date as YYYY-MM-DD, not %(raw)s.") % {"raw": raw}) from exc


def _messages(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


class Command(BaseCommand):
    help = gettext_lazy(
        "Voucher tools: generate a batch and its printer's file, mark it distributed, "
        "activate it, block a serial range, expire old vouchers."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # argparse runs regular expressions on the description: it needs a real str.
        parser.description = str(self.help)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        gen = sub.add_parser(
            "generate",
            help=gettext_lazy(
                "create a batch and write its one-time export file (serial, PIN, value, expiry)"
            ),
        )
        gen.add_argument(
            "--batch", required=True, help=gettext_lazy("batch code, e.g. HK2606 (A-Z, 0-9)")
        )
        gen.add_argument("--quantity", required=True, type=int, help=gettext_lazy("how many"))
        what = gen.add_mutually_exclusive_group(required=True)
        what.add_argument(
            "--value", type=int, help=gettext_lazy("face value in minor units, e.g. 10000")
        )
        what.add_argument("--plan", help=gettext_lazy("code of the plan the voucher gives"))
        gen.add_argument("--currency", help=gettext_lazy("ISO 4217 code (default: the plan's)"))
        gen.add_argument(
            "--expires", required=True, help=gettext_lazy("last day of use, YYYY-MM-DD")
        )
        gen.add_argument(
            "--distributor",
            required=True,
            help=gettext_lazy("distributor code (created if new)"),
        )
        gen.add_argument(
            "--distributor-name", default="", help=gettext_lazy("name for a new distributor")
        )
        gen.add_argument(
            "--luhn",
            action="store_true",
            help=gettext_lazy("end every PIN with a Luhn check digit, so typos are caught"),
        )
        gen.add_argument(
            "--out", required=True, help=gettext_lazy("export file to create (CSV, must not exist)")
        )
        for name, text in (
            ("distribute", gettext_lazy("mark a batch as handed to its distributor")),
            ("activate", gettext_lazy("make a batch (or part of it) redeemable")),
        ):
            cmd = sub.add_parser(name, help=text)
            cmd.add_argument("--batch", required=True, help=gettext_lazy("batch code"))
        activate = sub.choices["activate"]
        activate.add_argument(
            "--first", help=gettext_lazy("first serial to activate (default: all)")
        )
        activate.add_argument("--last", help=gettext_lazy("last serial to activate"))
        block = sub.add_parser("block", help=gettext_lazy("block a serial range"))
        block.add_argument("--first", required=True, help=gettext_lazy("first serial"))
        block.add_argument("--last", default="", help=gettext_lazy("last serial (default: first)"))
        block.add_argument("--reason", required=True, help=gettext_lazy("kept in the audit log"))
        sub.add_parser("expire", help=gettext_lazy("expire vouchers past their date now"))

    def handle(self, *args: Any, **options: Any) -> None:
        handler = getattr(self, f"do_{options['action']}")
        try:
            handler(options)
        except (ValidationError, LedgerError) as exc:
            raise CommandError(_messages(exc)) from exc

    def _batch(self, code: str) -> VoucherBatch:
        batch = VoucherBatch.objects.filter(code=code.strip().upper()).first()
        if batch is None:
            raise CommandError(_("There is no batch %(code)s.") % {"code": code})
        return batch

    def do_generate(self, options: dict[str, Any]) -> None:
        plan = None
        if options["plan"]:
            plan = Plan.objects.filter(code=options["plan"]).first()
            if plan is None:
                raise CommandError(_("There is no plan %(code)s.") % {"code": options["plan"]})
        code = options["distributor"].strip()
        distributor = Distributor.objects.filter(code=code).first()
        if distributor is None:
            distributor = Distributor.objects.create(
                code=code, name=options["distributor_name"] or code
            )
        with tqdm(
            total=options["quantity"], unit=_("vouchers"), disable=options["verbosity"] < 1
        ) as bar:
            made = actions.do_generate_batch(
                code=options["batch"],
                distributor=distributor,
                quantity=options["quantity"],
                expires_on=_date(options["expires"]),
                out=options["out"],
                currency=options["currency"],
                value=options["value"],
                plan=plan,
                luhn=options["luhn"],
                actor=ACTOR,
                now=clock.now(),
                progress=bar.update,
            )
        self.stdout.write(
            _(
                "Batch %(code)s: %(count)d vouchers. The PINs are in %(path)s and nowhere "
                "else: send the file to the printer, then delete it."
            )
            % {"code": made.batch.code, "count": made.count, "path": made.path}
        )

    def do_distribute(self, options: dict[str, Any]) -> None:
        batch = actions.do_distribute_batch(
            self._batch(options["batch"]), actor=ACTOR, now=clock.now()
        )
        self.stdout.write(
            _("Batch %(code)s: %(state)s.")
            % {"code": batch.code, "state": batch.get_state_display()}
        )

    def do_activate(self, options: dict[str, Any]) -> None:
        batch = self._batch(options["batch"])
        first = last = None
        if options["first"]:
            span = actions.serial_range(options["first"], options["last"] or options["first"])
            if span.batch.pk != batch.pk:
                raise CommandError(_("The serials do not belong to this batch."))
            first, last = span.first, span.last
        count = actions.do_activate_batch(
            batch, actor=ACTOR, first=first, last=last, now=clock.now()
        )
        self.stdout.write(
            ngettext(
                "Batch %(code)s: %(count)d voucher activated.",
                "Batch %(code)s: %(count)d vouchers activated.",
                count,
            )
            % {"code": batch.code, "count": count}
        )

    def do_block(self, options: dict[str, Any]) -> None:
        span = actions.serial_range(options["first"], options["last"])
        result = actions.do_block_vouchers(
            span, reason=options["reason"], actor=ACTOR, now=clock.now()
        )
        self.stdout.write(
            ngettext(
                "%(count)d voucher blocked (%(range)s).",
                "%(count)d vouchers blocked (%(range)s).",
                result.blocked,
            )
            % {"count": result.blocked, "range": span.label}
        )

    def do_expire(self, options: dict[str, Any]) -> None:
        total = 0
        while True:
            result = actions.expire_vouchers(clock.now())
            total += result.vouchers
            if not result.vouchers:
                break
        self.stdout.write(
            ngettext("%(count)d voucher expired.", "%(count)d vouchers expired.", total)
            % {"count": total}
        )
