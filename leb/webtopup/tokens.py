"""Signed values that carry the top-up flow from page to page.

The flow keeps no server-side state before the order exists: each page hands
the next one a value signed with the site's key and stamped with the time, so
it cannot be altered and stops working after WEBTOPUP_TOKEN_MINUTES. Each page
issues fresh values, so the limit counts from the last page shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing

from leb import clock

LINE_SALT = "leb.webtopup.line"
CHOICE_SALT = "leb.webtopup.choice"
TICKET_SALT = "leb.webtopup.ticket"


class TokenExpired(Exception):
    """The value was genuine but is too old."""


class TokenInvalid(Exception):
    """The value was altered, truncated or made for something else."""


def max_age_seconds() -> int:
    return int(getattr(settings, "WEBTOPUP_TOKEN_MINUTES", 30)) * 60


class _ClockSigner(signing.TimestampSigner):
    """Stamps and ages by leb's clock, so expiry follows the same "now" as
    the prices it guards (and tests can move it)."""

    def timestamp(self) -> str:
        return signing.b62_encode(int(clock.now().timestamp()))

    def unsign(self, value: str, max_age: Any = None) -> str:
        result = signing.Signer.unsign(self, value)
        value, stamp = result.rsplit(self.sep, 1)
        issued = signing.b62_decode(stamp)
        if max_age is not None and clock.now().timestamp() - issued > float(max_age):
            raise signing.SignatureExpired("Signature age exceeds max_age")
        return value


def _sign(value: dict[str, Any], salt: str) -> str:
    return _ClockSigner(salt=salt).sign_object(value, compress=True)


def _unsign(token: str, salt: str) -> dict[str, Any]:
    try:
        value = _ClockSigner(salt=salt).unsign_object(token, max_age=max_age_seconds())
    except signing.SignatureExpired as exc:
        raise TokenExpired from exc
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as exc:
        raise TokenInvalid from exc
    if not isinstance(value, dict):
        raise TokenInvalid
    return value


def line_token(line_id: int) -> str:
    return _sign({"l": line_id}, LINE_SALT)


def line_from_token(token: str) -> int:
    value = _unsign(token, LINE_SALT)
    line_id = value.get("l")
    if not isinstance(line_id, int) or isinstance(line_id, bool):
        raise TokenInvalid
    return line_id


@dataclass(frozen=True)
class Choice:
    """What the subscriber picked on the plans page."""

    line_id: int
    plan_code: str = ""
    amount: int | None = None
    promo_code: str = ""

    def to_token(self) -> str:
        return _sign(
            {"l": self.line_id, "p": self.plan_code, "a": self.amount, "c": self.promo_code},
            CHOICE_SALT,
        )

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> Choice:
        try:
            choice = cls(
                line_id=int(value["l"]),
                plan_code=str(value.get("p") or ""),
                amount=None if value.get("a") is None else int(value["a"]),
                promo_code=str(value.get("c") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenInvalid from exc
        if bool(choice.plan_code) == (choice.amount is not None):
            raise TokenInvalid
        return choice

    @classmethod
    def from_token(cls, token: str) -> Choice:
        return cls.from_value(_unsign(token, CHOICE_SALT))


@dataclass(frozen=True)
class Ticket:
    """The confirm page's promise: this choice, at these terms, under this
    request key. The key makes a repeated "Pay" return the same order."""

    choice: Choice
    key: str
    terms: str

    def to_token(self) -> str:
        value = {
            "l": self.choice.line_id,
            "p": self.choice.plan_code,
            "a": self.choice.amount,
            "c": self.choice.promo_code,
            "k": self.key,
            "t": self.terms,
        }
        return _sign(value, TICKET_SALT)

    @classmethod
    def from_token(cls, token: str) -> Ticket:
        value = _unsign(token, TICKET_SALT)
        key, terms = value.get("k"), value.get("t")
        if not isinstance(key, str) or not key or not isinstance(terms, str):
            raise TokenInvalid
        return cls(choice=Choice.from_value(value), key=key, terms=terms)
