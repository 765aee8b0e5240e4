from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _gettext_lazy

from leb.ops.demo import demo_login_notes, demo_logins, load_demo

# Lazy so the help follows the active language; typed as str for BaseCommand.
gettext_lazy = cast(Callable[[str], str], _gettext_lazy)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items())) or "-"


class Command(BaseCommand):
    help = gettext_lazy(
        "Load demo data (policies, plans, promotions, lines in every state, demo logins). "
        "Safe to run again: existing demo rows are left as they are."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = load_demo()
        if summary.created_lines:
            self.stdout.write(
                _("Demo data loaded: %(count)d new lines.") % {"count": summary.created_lines}
            )
        else:
            self.stdout.write(_("Demo data already present: nothing changed."))
        self.stdout.write(
            _("Policies %(policies)d, plans %(plans)d, promotions %(promotions)d.")
            % {
                "policies": summary.policies,
                "plans": summary.plans,
                "promotions": summary.promotions,
            }
        )
        self.stdout.write(
            _("Demo lines: %(counts)s") % {"counts": _counts(summary.lines_by_status)}
        )
        self.stdout.write(
            _("Phone numbers: %(counts)s") % {"counts": _counts(summary.numbers_by_status)}
        )
        self.stdout.write(
            _("Top-up orders: %(counts)s") % {"counts": _counts(summary.orders_by_status)}
        )
        self.stdout.write("")
        self.stdout.write(_("Logins (demo data only):"))
        for role, username, password in demo_logins():
            self.stdout.write(f"  {role:<11} {username:<8} {password}")
        for note in demo_login_notes():
            self.stdout.write(note)
        self.stdout.write(_("Back office: /ops/"))
        if summary.agent_code:
            self.stdout.write(
                _("Demo agent %(code)s: its API key is in %(path)s. Try:")
                % {"code": summary.agent_code, "path": summary.agent_key_file}
            )
            self.stdout.write(
                f"  env $(cat {summary.agent_key_file}) .venv/bin/leb agent "
                "--url http://127.0.0.1:8000 balance"
            )
