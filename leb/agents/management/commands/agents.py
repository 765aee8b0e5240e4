"""`leb agents expire`: release overdue two-step reservations and purge old
nonces (what the periodic job does), for cron or by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from leb.agents.actions import expire_agent_topups, purge_nonces


class Command(BaseCommand):
    help = "Agent housekeeping: expire two-step top-ups, purge old nonces."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["expire"])

    def handle(self, *args: Any, **options: Any) -> None:
        purged = purge_nonces()
        expired = expire_agent_topups()
        self.stdout.write(f"expired {expired} two-step top-ups, purged {purged} nonces")
