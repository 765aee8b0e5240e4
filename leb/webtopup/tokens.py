"""Signed values that carry the top-up flow from page to page.

The flow keeps no server-side state before the order exists: each page hands
the next one a value signed with the site's key and stamped with the time, so
it cannot be altered and stops working after WEBTOPUP_TOKEN_MINUTES. Each page
issues fresh values, so the limit counts from the last page shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leb.topups.links import (
    TokenExpired,
    TokenInvalid,
    line_from_token,
    line_token,
    max_age_seconds,
    sign,
    unsign,
)

__all__ = [
    "Choice",
    "Ticket",
    "TokenExpired",
    "TokenInvalid",
    "line_from_token",
    "line_token",
    "max_age_seconds",
]

CHOICE_SALT = "leb.webtopup.choice"
TICKET_SALT = "leb.webtopup.ticket"


@dataclass(frozen=True)
class Choice:
    """What the subscriber picked on the plans page."""

    line_id: int
    plan_code: str = ""
    amount: int | None = None
    promo_code: str = ""

    def to_token(self) -> str:
        return sign(
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
        return cls.from_value(unsign(token, CHOICE_SALT))


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
        return sign(value, TICKET_SALT)

    @classmethod
    def from_token(cls, token: str) -> Ticket:
        value = unsign(token, TICKET_SALT)
        key, terms = value.get("k"), value.get("t")
        if not isinstance(key, str) or not key or not isinstance(terms, str):
            raise TokenInvalid
        return cls(choice=Choice.from_value(value), key=key, terms=terms)
