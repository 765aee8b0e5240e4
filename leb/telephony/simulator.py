"""A phone in the terminal: calls the hotline or dials the USSD code of a
running leb over HTTP, the way Twilio and a USSD gateway would.

The voice side signs every request with X-Twilio-Signature (Twilio's own
RequestValidator), reads the TwiML it gets back (xml.etree) and shows each
<Say>; at a <Gather> it asks for keys: "#" ends an entry when the Gather
finishes on "#", an empty line is a timeout (the <Redirect> is followed, as
Twilio does). <Dial> and <Hangup> end the call.
"""

from __future__ import annotations

import itertools
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests
from requests.auth import HTTPBasicAuth
from twilio.request_validator import RequestValidator

Reader = Callable[[str], str]
Writer = Callable[[str], None]
MAX_TURNS = 200


class Hangup(Exception):
    """The person at the keyboard put the phone down (no more input)."""


@dataclass
class TwiML:
    says: list[tuple[str, str]] = field(default_factory=list)  # (language, text)
    gather: dict[str, str] | None = None
    redirect: str = ""
    dial: str = ""
    hangup: bool = False


def parse_twiml(body: str) -> TwiML:
    root = ET.fromstring(body)  # noqa: S314 - the leb server's own reply
    result = TwiML()
    for verb in root:
        if verb.tag == "Say":
            result.says.append((verb.get("language", ""), (verb.text or "").strip()))
        elif verb.tag == "Gather":
            result.gather = dict(verb.attrib)
            result.says += [
                (say.get("language", ""), (say.text or "").strip()) for say in verb.iter("Say")
            ]
        elif verb.tag == "Redirect":
            result.redirect = (verb.text or "").strip()
        elif verb.tag == "Dial":
            result.dial = (verb.text or "").strip() or "".join(
                (child.text or "").strip() for child in verb
            )
        elif verb.tag == "Hangup":
            result.hangup = True
    return result


def scripted(inputs: list[str], echo: Writer) -> Reader:
    """A reader that answers from a list, then hangs up."""
    remaining: Iterator[str] = iter(inputs)

    def read(prompt: str) -> str:
        try:
            value = next(remaining)
        except StopIteration:
            raise Hangup from None
        echo(f"{prompt}{value}")
        return value

    return read


def keyboard(prompt: str) -> str:
    try:
        return input(prompt)
    except EOFError:
        raise Hangup from None


class PhoneSimulator:
    def __init__(
        self,
        base_url: str,
        caller: str,
        *,
        write: Writer,
        read: Reader = keyboard,
        timeout: float = 30,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.caller = caller
        self.write = write
        self.read = read
        self.timeout = timeout
        self.http = requests.Session()

    # -- voice ---------------------------------------------------------------

    def call(self, *, to: str, auth_token: str) -> None:
        validator = RequestValidator(auth_token)
        call_sid = "CA" + secrets.token_hex(16)
        base = {
            "CallSid": call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller,
            "To": to,
            "Direction": "inbound",
            "CallStatus": "in-progress",
        }
        self.write(f"☎ {self.caller} → {to}  (CallSid {call_sid})")
        url = f"{self.base_url}/phone/voice/"
        params = dict(base)
        try:
            for _turn in itertools.count():
                if _turn >= MAX_TURNS:
                    self.write("[too many turns: hanging up]")
                    break
                twiml = self._post_voice(validator, url, params)
                if twiml is None:
                    break
                for language, text in twiml.says:
                    self.write(f"  [{language}] {text}")
                if twiml.dial:
                    self.write(f"[dialling {twiml.dial}]")
                    break
                if twiml.hangup or (twiml.gather is None and not twiml.redirect):
                    self.write("[call ended]")
                    break
                if twiml.gather is None:
                    url, params = twiml.redirect, dict(base)
                    continue
                finish = twiml.gather.get("finishOnKey", "")
                hint = " (end with #)" if finish == "#" else ""
                keys = self.read(f"keys{hint}> ").strip()
                if finish and keys.endswith(finish):
                    keys = keys[: -len(finish)]
                if not keys:
                    self.write("[no input: timeout]")
                    url, params = twiml.redirect or twiml.gather["action"], dict(base)
                    continue
                url, params = twiml.gather["action"], {**base, "Digits": keys}
        except Hangup:
            self.write("[you hung up]")
            status = {**base, "CallStatus": "completed"}
            self._post_voice(validator, f"{self.base_url}/phone/voice/status", status, quiet=True)

    def _post_voice(
        self, validator: RequestValidator, url: str, params: dict[str, str], quiet: bool = False
    ) -> TwiML | None:
        signature = validator.compute_signature(url, params)
        response = self.http.post(
            url, data=params, headers={"X-Twilio-Signature": signature}, timeout=self.timeout
        )
        if quiet:
            return None
        if response.status_code != 200:
            self.write(f"[HTTP {response.status_code}: {response.text[:200]}]")
            return None
        return parse_twiml(response.text)

    # -- USSD ----------------------------------------------------------------

    def ussd(self, *, code: str, secret: str) -> None:
        session_id = "ATUid_" + secrets.token_hex(8)
        inputs: list[str] = []
        self.write(f"☎ {self.caller} dials {code}")
        try:
            for _turn in range(MAX_TURNS):
                response = self.http.post(
                    f"{self.base_url}/phone/ussd",
                    data={
                        "sessionId": session_id,
                        "serviceCode": code,
                        "phoneNumber": self.caller,
                        "text": "*".join(inputs),
                    },
                    auth=HTTPBasicAuth("gateway", secret),
                    timeout=self.timeout,
                )
                if response.status_code != 200:
                    self.write(f"[HTTP {response.status_code}: {response.text[:200]}]")
                    return
                kind, _space, text = response.text.partition(" ")
                for screen_line in text.splitlines():
                    self.write(f"  | {screen_line}")
                if kind != "CON":
                    self.write("[session ended]")
                    return
                inputs.append(self.read("reply> ").strip())
        except Hangup:
            self.write("[you cancelled]")
