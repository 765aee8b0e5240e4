from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leb.audit.actions import verify_chain


class Command(BaseCommand):
    help = "Audit log tools. `leb audit verify` checks the hash chain."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify")

    def handle(self, *args: Any, **options: Any) -> None:
        problems = verify_chain()
        for problem in problems:
            self.stderr.write(f"FAIL {problem}")
        if problems:
            raise CommandError(f"audit verify: {len(problems)} problem(s)")
        self.stdout.write("audit verify: OK")
