"""`leb phone`: a phone in the terminal for a running leb.

    leb phone ivr  --url http://127.0.0.1:8000 --from +85294000001 [--to +85230000000]
    leb phone ussd --url http://127.0.0.1:8000 --from +85294000001 --code *123#

Type the keys at each prompt ("#" ends a PIN or number entry; an empty line
is a timeout). --script "3,2,1,1234…#" plays the keys from a list instead."""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from leb.telephony.simulator import PhoneSimulator, keyboard, scripted


class Command(BaseCommand):
    help = "Call the hotline (IVR) or dial the USSD code of a running leb from the terminal."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="channel", required=True)
        for name in ("ivr", "ussd"):
            channel = sub.add_parser(name, help=f"simulate a {name.upper()} session")
            channel.add_argument("--url", default=settings.SITE_URL, help="leb's base URL")
            channel.add_argument("--from", dest="caller", required=True, help="caller number")
            channel.add_argument(
                "--script",
                default=None,
                help="comma-separated inputs to play instead of reading the keyboard "
                "(an empty item is a timeout)",
            )
        ivr = sub.choices["ivr"]
        ivr.add_argument("--to", default="+85230000000", help="the hotline number called")
        ivr.add_argument(
            "--auth-token",
            default=None,
            help="Twilio auth token to sign with (default: LEB_TWILIO_AUTH_TOKEN)",
        )
        ussd = sub.choices["ussd"]
        ussd.add_argument("--code", default="*123#", help="the USSD service code")
        ussd.add_argument(
            "--secret", default=None, help="USSD gateway secret (default: LEB_USSD_SECRET)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        def write(text: str) -> None:
            self.stdout.write(text)

        script = options["script"]
        read = scripted(script.split(","), write) if script is not None else keyboard
        phone = PhoneSimulator(options["url"], options["caller"], write=write, read=read)
        if options["channel"] == "ivr":
            token = options["auth_token"]
            if token is None:
                token = getattr(settings, "TWILIO_AUTH_TOKEN", "")
            if not token:
                raise CommandError(
                    "No Twilio auth token: set LEB_TWILIO_AUTH_TOKEN (also on the server) "
                    "or pass --auth-token."
                )
            try:
                phone.call(to=options["to"], auth_token=token)
            except requests.RequestException as exc:
                raise CommandError(
                    f"Could not reach leb: {exc}. Is it running, and does its "
                    "LEB_SITE_URL (or LEB_PHONE_PUBLIC_URL) point at this address?"
                ) from exc
        else:
            secret = options["secret"]
            if secret is None:
                secret = getattr(settings, "USSD_SECRET", "")
            if not secret:
                raise CommandError(
                    "No USSD secret: set LEB_USSD_SECRET (also on the server) or pass --secret."
                )
            try:
                phone.ussd(code=options["code"], secret=secret)
            except requests.RequestException as exc:
                raise CommandError(f"Could not reach leb: {exc}. Is it running?") from exc
