"""A fake Twilio and a fake USSD gateway. The fake Twilio dials the hotline through Django's test client, signs each
request as Twilio does, parses the TwiML and follows <Gather action> with the
keys pressed (or, with no keys, the <Redirect>, as Twilio does on timeout)."""

from __future__ import annotations

import base64
import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.test import Client
from twilio.request_validator import RequestValidator

TOKEN = "test-twilio-auth-token"
USSD_SECRET = "ussd-test-secret"
_sessions = itertools.count(1)
LANGUAGE_KEYS = {"zh-hans": "1", "zh-hant": "2", "en": "3"}
BASE = "http://testserver"
_sids = itertools.count(1)


@dataclass
class Reply:
    status: int
    says: list[str] = field(default_factory=list)
    gather: dict[str, str] | None = None
    redirect: str = ""
    dial: str = ""
    hangup: bool = False
    xml: str = ""

    @property
    def text(self) -> str:
        return " ".join(self.says)


def parse_twiml(body: str) -> Reply:
    root = ET.fromstring(body)  # noqa: S314 - leb's own reply in a test
    reply = Reply(status=200, xml=body)
    assert root.tag == "Response", body
    for verb in root:
        if verb.tag == "Say":
            reply.says.append(verb.text or "")
        elif verb.tag == "Gather":
            reply.gather = dict(verb.attrib)
            reply.says += [say.text or "" for say in verb.iter("Say")]
        elif verb.tag == "Redirect":
            reply.redirect = verb.text or ""
        elif verb.tag == "Dial":
            reply.dial = (verb.text or "").strip()
        elif verb.tag == "Hangup":
            reply.hangup = True
    return reply


class FakeTwilio:
    """One call. `start()` dials; `press("1")` answers the current Gather;
    `wait()` lets it time out."""

    def __init__(
        self,
        client: Client | None = None,
        *,
        caller: str = "+85294000001",
        to: str = "+85230000000",
        token: str = TOKEN,
        call_sid: str = "",
    ) -> None:
        self.client = client or Client()
        self.caller = caller
        self.to = to
        self.validator = RequestValidator(token)
        self.call_sid = call_sid or f"CA{next(_sids):032d}"
        self.last: Reply | None = None
        self.transcript: list[str] = []

    def post(self, url: str, extra: dict[str, str] | None = None, *, sign: bool = True) -> Reply:
        params = {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller,
            "To": self.to,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            **(extra or {}),
        }
        headers: dict[str, Any] = {}
        if sign:
            headers["HTTP_X_TWILIO_SIGNATURE"] = self.validator.compute_signature(url, params)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = self.client.post(path, params, **headers)
        if response.status_code != 200:
            self.last = Reply(status=response.status_code)
            return self.last
        self.last = parse_twiml(response.content.decode())
        self.transcript += self.last.says
        return self.last

    def start(self) -> Reply:
        return self.post(f"{BASE}/phone/voice/")

    def press(self, digits: str) -> Reply:
        assert self.last is not None and self.last.gather is not None, self.last
        return self.post(self.last.gather["action"], {"Digits": digits})

    def wait(self) -> Reply:
        """No key pressed: Twilio moves on to the <Redirect> after the <Gather>."""
        assert self.last is not None and self.last.redirect, self.last
        return self.post(self.last.redirect)


def basic_auth(secret: str = USSD_SECRET) -> str:
    return "Basic " + base64.b64encode(f"gateway:{secret}".encode()).decode()


class Phone:
    """One USSD session from `number`."""

    def __init__(self, number: str, *, language: str = "en") -> None:
        self.number = number
        self.session = f"ATUid_{next(_sessions)}"
        self.prefix = [] if language == "en" else ["4", LANGUAGE_KEYS[language]]
        self.client = Client()

    def send(self, *inputs: str, auth: str | None = None) -> Any:
        text = "*".join([*self.prefix, *inputs])
        return self.client.post(
            "/phone/ussd",
            {
                "sessionId": self.session,
                "serviceCode": "*123#",
                "phoneNumber": self.number,
                "text": text,
            },
            HTTP_AUTHORIZATION=basic_auth() if auth is None else auth,
        )

    def screen(self, *inputs: str) -> str:
        response = self.send(*inputs)
        assert response.status_code == 200, response
        assert response["Content-Type"].startswith("text/plain")
        body = response.content.decode()
        assert body.startswith(("CON ", "END ")), body
        assert len(body) <= 182, (len(body), body)
        return body
