from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _gettext_lazy
from tqdm import tqdm

from leb.lines import importer

# Lazy, so help is rendered in the language active when it is shown; typed as
# str because argparse and BaseCommand are annotated with str.
gettext_lazy = cast(Callable[[str], str], _gettext_lazy)


class Command(BaseCommand):
    help = gettext_lazy(
        "Line tools. `leb lines import FILE.csv --policy CODE --currency HKD` loads eSIM profiles."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # argparse runs regular expressions on the description: it needs a real str.
        parser.description = str(self.help)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser(
            "import",
            help=gettext_lazy(
                "create lines in inventory from a CSV file "
                "(columns iccid, msisdn, activation_code, optional eid)"
            ),
        )
        load.add_argument(
            "file", help=gettext_lazy("CSV file with a header row, UTF-8 (a BOM is fine)")
        )
        load.add_argument(
            "--policy", required=True, help=gettext_lazy("number policy code for the new lines")
        )
        load.add_argument(
            "--currency", required=True, help=gettext_lazy("ISO 4217 currency of the lines")
        )
        load.add_argument(
            "--skip-invalid",
            action="store_true",
            help=gettext_lazy(
                "import the good rows and list the bad ones instead of importing nothing"
            ),
        )
        load.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext_lazy("check the file and report; write nothing"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "import":
            self.import_file(options)

    def import_file(self, options: dict[str, Any]) -> None:
        try:
            policy = importer.resolve_policy(options["policy"])
            currency = importer.normalize_currency(options["currency"])
            with importer.open_csv(options["file"]) as stream:
                parsed = importer.parse_csv(stream)
        except importer.ImportRefused as exc:
            raise CommandError(str(exc)) from exc

        if parsed.ignored_columns:
            self.stderr.write(
                _("Ignoring unknown column(s): %(columns)s")
                % {"columns": ", ".join(parsed.ignored_columns)}
            )
        validation = importer.validate_rows(parsed.rows, expected_fields=parsed.expected_fields)
        for error in validation.errors:
            self.stderr.write(str(error))

        skipped = len(validation.bad_lines)
        if skipped and not validation.good:
            raise CommandError(
                _("All %(total)d rows are invalid; nothing was imported.")
                % {"total": len(parsed.rows)}
            )
        if skipped and not options["skip_invalid"]:
            raise CommandError(
                _(
                    "%(bad)d of %(total)d rows are invalid; nothing was imported. "
                    "Fix them, or use --skip-invalid to import the %(good)d good rows."
                )
                % {"bad": skipped, "total": len(parsed.rows), "good": len(validation.good)}
            )
        if skipped:
            self.stderr.write(
                _("Skipped lines: %(lines)s")
                % {"lines": ", ".join(str(line) for line in validation.bad_lines)}
            )

        if options["dry_run"]:
            self.stdout.write(
                _("Dry run: would import %(imported)d, skip %(skipped)d; nothing was written.")
                % {"imported": len(validation.good), "skipped": skipped}
            )
            return

        # disable=None: a bar only on a terminal, so logs and pipes stay clean.
        progress = tqdm(
            validation.good,
            total=len(validation.good),
            desc=_("Importing"),
            unit=_("line"),
            # The raw stream: the wrapper would add a newline to every redraw.
            file=cast(TextIO, self.stderr._out),
            disable=None,
        )
        try:
            with progress:
                lines = importer.import_rows(
                    progress, policy=policy, currency=currency, actor=importer.ACTOR
                )
        except importer.RowImportFailed as exc:
            raise CommandError(_("%(error)s Nothing was imported.") % {"error": exc.error}) from exc
        self.stdout.write(
            _("Imported %(imported)d, skipped %(skipped)d.")
            % {"imported": len(lines), "skipped": skipped}
        )
