"""`leb agent`: an agent's client for a running leb, signing every request
as a real integration must (leb.agents.signing).

    leb agent --url http://127.0.0.1:8000 --key-id lak_… --secret las_… balance
    leb agent … quote --msisdn +85294000001 --plan hk-50
    leb agent … topup --external-id INV-1 --msisdn +85294000001 --plan hk-50 [--two-step]
    leb agent … confirm ID
    leb agent … status ID | status --external-id INV-1
    leb agent … statement --from 2026-06-01 --to 2026-06-30 [--csv]

The key id and secret default to LEB_AGENT_KEY_ID and LEB_AGENT_SECRET. The
answer is printed (JSON pretty-printed); an error answer is printed too and
the command exits non-zero."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from leb.agents import signing
from leb.common import clock

TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class AgentClient:
    """Signed requests to /agent/v1/ with one key."""

    def __init__(self, base_url: str, key_id: str, secret: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        self.secret = secret

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, accept: str = ""
    ) -> Answer:
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        # The path as sent, query included: it is part of what is signed.
        signed_path = urlsplit(self.base_url).path.rstrip("/") + path
        headers = signing.signed_headers(
            self.key_id,
            self.secret,
            method,
            signed_path,
            data,
            int(clock.now().timestamp()),
            secrets.token_urlsafe(18),
        )
        headers["Accept"] = accept or "application/json"
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = requests.request(
            method,
            self.base_url + path,
            data=data,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        return Answer(response.status_code, response.headers.get("Content-Type", ""), response.text)


def _pretty(answer: Answer) -> str:
    if "json" in answer.content_type:
        try:
            return json.dumps(json.loads(answer.text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return answer.text


class Command(BaseCommand):
    help = "Call the agent API of a running leb with signed requests, as an agent's system would."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default=settings.SITE_URL, help="leb's base URL")
        parser.add_argument("--key-id", default=None, help="API key id (default: LEB_AGENT_KEY_ID)")
        parser.add_argument(
            "--secret", default=None, help="API key secret (default: LEB_AGENT_SECRET)"
        )
        sub = parser.add_subparsers(dest="call", required=True)
        quoting = sub.add_parser("quote", help="price a top-up (writes nothing)")
        quoting.add_argument("--msisdn", required=True)
        quoting.add_argument("--plan", required=True, help="plan code")
        topup = sub.add_parser("topup", help="sell a top-up from the float")
        topup.add_argument("--external-id", required=True, help="your id for this sale")
        topup.add_argument("--msisdn", required=True)
        topup.add_argument("--plan", required=True, help="plan code")
        topup.add_argument(
            "--two-step", action="store_true", help="reserve now, complete with `confirm`"
        )
        topup.add_argument(
            "--allow-repeat",
            action="store_true",
            help="the same plan to the same number again within minutes is intended",
        )
        confirm = sub.add_parser("confirm", help="complete a two-step top-up")
        confirm.add_argument("topup_id")
        status = sub.add_parser("status", help="one top-up, by id or by your external id")
        status.add_argument("topup_id", nargs="?", default=None)
        status.add_argument("--external-id", default=None)
        sub.add_parser("balance", help="your float")
        statement = sub.add_parser("statement", help="float movements between two dates")
        statement.add_argument("--from", dest="date_from", required=True, help="YYYY-MM-DD")
        statement.add_argument("--to", dest="date_to", required=True, help="YYYY-MM-DD")
        statement.add_argument("--csv", action="store_true", help="CSV instead of JSON")

    def _call(self, options: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None, str]:
        call = options["call"]
        if call == "quote":
            return (
                "POST",
                "/quotes",
                {"msisdn": options["msisdn"], "plan_code": options["plan"]},
                "",
            )
        if call == "topup":
            body = {
                "external_id": options["external_id"],
                "msisdn": options["msisdn"],
                "plan_code": options["plan"],
                "mode": "two_step" if options["two_step"] else "instant",
                "allow_repeat": bool(options["allow_repeat"]),
            }
            return "POST", "/topups", body, ""
        if call == "confirm":
            return "POST", f"/topups/{_segment(options['topup_id'])}/confirm", {}, ""
        if call == "status":
            if options["external_id"] is not None:
                by_external_id = urlencode({"external_id": options["external_id"]})
                return "GET", f"/topups?{by_external_id}", None, ""
            if not options["topup_id"]:
                raise CommandError(_("Give the top-up's id or --external-id."))
            return "GET", f"/topups/{_segment(options['topup_id'])}", None, ""
        if call == "balance":
            return "GET", "/balance", None, ""
        dates = {"from": options["date_from"], "to": options["date_to"]}
        if options["csv"]:
            dates["format"] = "csv"
        return "GET", f"/statement?{urlencode(dates)}", None, "text/csv" if options["csv"] else ""

    def handle(self, *args: Any, **options: Any) -> None:
        key_id = options["key_id"] or os.environ.get("LEB_AGENT_KEY_ID", "")
        secret = options["secret"] or os.environ.get("LEB_AGENT_SECRET", "")
        if not key_id or not secret:
            raise CommandError(
                _(
                    "No API key: pass --key-id and --secret, or set LEB_AGENT_KEY_ID and LEB_AGENT_SECRET."
                )
            )
        url = str(options["url"] or "")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise CommandError(_("Give leb's address as a URL, e.g. http://127.0.0.1:8000."))
        method, path, body, accept = self._call(options)
        client = AgentClient(url.rstrip("/") + "/agent/v1", key_id, secret)
        try:
            answer = client.request(method, path, body, accept=accept)
        except requests.RequestException as exc:
            raise CommandError(
                _("Could not reach leb at %(url)s (%(error)s). Is it running?")
                % {"url": url, "error": type(exc).__name__}
            ) from exc
        text = _pretty(answer)
        if answer.ok:
            self.stdout.write(text)
            return
        self.stderr.write(text)
        raise CommandError(
            _("leb answered HTTP %(status)d.") % {"status": answer.status}, returncode=1
        )


def _segment(value: str) -> str:
    """A top-up id as one path segment (ids are hex; anything else is sent escaped)."""
    return quote(value, safe="")
