"""`leb agents expire`: release overdue two-step reservations and purge old
nonces (what the periodic job does), for cron or by hand.

`leb agents totp USERNAME`: the current 6-digit code of a demo agent portal
login (see leb.agents.demo), so the demo can be tried without an
authenticator app. Only with LEB_DEBUG on, and only for the demo accounts
whose authenticator still has the demo's fixed key: never a real person's."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django_otp.oath import totp

from leb.agents.actions import expire_agent_topups, purge_nonces
from leb.agents.demo import demo_totp_device


class Command(BaseCommand):
    help = "Agent housekeeping: expire two-step top-ups, purge old nonces; demo sign-in codes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["expire", "totp"])
        parser.add_argument("username", nargs="?", default="", help="totp: the demo login")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "totp":
            self.stdout.write(self._demo_code(options["username"]))
            return
        purged = purge_nonces()
        expired = expire_agent_topups()
        self.stdout.write(f"expired {expired} two-step top-ups, purged {purged} nonces")

    def _demo_code(self, username: str) -> str:
        if not settings.DEBUG:
            raise CommandError(_("Demo sign-in codes are shown only with LEB_DEBUG on."))
        device = demo_totp_device(username)
        if device is None:
            raise CommandError(
                _("%(username)s is not a demo agent login with the demo authenticator key.")
                % {"username": username or "-"}
            )
        step = int(device.step)
        left = step - int(time.time() - device.t0) % step
        return _("%(code)s (valid for %(seconds)d more seconds)") % {
            "code": f"{totp(device.bin_key, step=step, t0=device.t0, digits=device.digits):06d}",
            "seconds": left,
        }
