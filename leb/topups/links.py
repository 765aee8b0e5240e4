"""Links that start a web top-up for a known line, and the signed values
that carry the top-up flow from page to page.

The flow keeps no server-side state before the order exists: each page hands
the next one a value signed with the site's key and stamped with the time, so
it cannot be altered and stops working after WEBTOPUP_TOKEN_MINUTES.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from leb.common.signing import ClockSigner

LINE_SALT = "leb.webtopup.line"


class TokenExpired(Exception):
    """The value was genuine but is too old."""


class TokenInvalid(Exception):
    """The value was altered, truncated or made for something else."""


def max_age_seconds() -> int:
    return int(getattr(settings, "WEBTOPUP_TOKEN_MINUTES", 30)) * 60


def sign(value: dict[str, Any], salt: str) -> str:
    return ClockSigner(salt=salt).sign_object(value, compress=True)


def unsign(token: str, salt: str) -> dict[str, Any]:
    try:
        value = ClockSigner(salt=salt).unsign_object(token, max_age=max_age_seconds())
    except signing.SignatureExpired as exc:
        raise TokenExpired from exc
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as exc:
        raise TokenInvalid from exc
    if not isinstance(value, dict):
        raise TokenInvalid
    return value


def line_token(line_id: int) -> str:
    return sign({"l": line_id}, LINE_SALT)


def line_from_token(token: str) -> int:
    value = unsign(token, LINE_SALT)
    line_id = value.get("l")
    if not isinstance(line_id, int) or isinstance(line_id, bool):
        raise TokenInvalid
    return line_id


def top_up_url(line_id: int) -> str:
    """The web top-up for this very line: its plans page, no number to retype."""
    return reverse("webtopup:plans", kwargs={"token": line_token(line_id)})
