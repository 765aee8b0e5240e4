"""PINs and serials: making them, normalising what people type, hashing.

A PIN is 16 digits from `secrets`; a batch may end each PIN with a Luhn check
digit (15 random digits + 1), so most typos are caught before they count as
a failed attempt. The stored form is HMAC-SHA256(pepper, PIN): fast to look
up by a unique index, useless to anyone who reads the database without the
pepper.

A serial is `<BATCH>-<NNNNNN><C>`: the batch code, the voucher's number in
the batch (six digits) and a Luhn check digit over those six digits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from stdnum import luhn

PIN_LENGTH = 16
MAX_QUANTITY = 999_999
BATCH_CODE = re.compile(r"[A-Z0-9]{2,12}")
_SERIAL = re.compile(r"(?P<code>[A-Z0-9]{2,12})-(?P<number>[0-9]{6})(?P<check>[0-9])")
_SEPARATORS = re.compile(r"[\s\-_.]+")


def pepper() -> bytes:
    configured = settings.VOUCHER_PIN_PEPPER
    if configured:
        return configured.encode()
    # Local use only (settings refuse an empty pepper in production).
    return hashlib.sha256(f"leb-voucher-pepper:{settings.SECRET_KEY}".encode()).digest()


def hash_pin(pin: str) -> str:
    return hmac.new(pepper(), pin.encode(), hashlib.sha256).hexdigest()


def normalize_pin(raw: str) -> str:
    """What was typed, without spaces and dashes; full-width digits become ASCII."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw or ""))


def has_pin_shape(pin: str) -> bool:
    """Exactly PIN_LENGTH ASCII digits (after normalize_pin)."""
    return len(pin) == PIN_LENGTH and pin.isascii() and pin.isdigit()


def luhn_ok(pin: str) -> bool:
    return luhn.is_valid(pin)


def new_pin(*, with_check_digit: bool) -> str:
    if with_check_digit:
        body = "".join(secrets.choice("0123456789") for _ in range(PIN_LENGTH - 1))
        return body + luhn.calc_check_digit(body)
    return "".join(secrets.choice("0123456789") for _ in range(PIN_LENGTH))


def format_pin(pin: str) -> str:
    """Groups of four for printing: 1234 5678 9012 3456."""
    return " ".join(pin[i : i + 4] for i in range(0, len(pin), 4))


def make_serial(batch_code: str, number: int) -> str:
    digits = f"{number:06d}"
    return f"{batch_code}-{digits}{luhn.calc_check_digit(digits)}"


@dataclass(frozen=True)
class Serial:
    batch_code: str
    number: int


def parse_serial(raw: str) -> Serial | None:
    """A well-formed serial with a correct check digit, or None."""
    text = unicodedata.normalize("NFKC", raw or "").strip().upper().replace(" ", "")
    match = _SERIAL.fullmatch(text)
    if match is None or not luhn.is_valid(match["number"] + match["check"]):
        return None
    return Serial(match["code"], int(match["number"]))
