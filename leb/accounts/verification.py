"""Proving an account holds its contact details, and resetting a password by SMS.

An email address is proven by a signed link: it carries the account, the
address and when that address was last proven, so it stops working once used,
once the address changes, and after ACCOUNTS_EMAIL_LINK_HOURS. A mobile number
is proven by a 6-digit code texted to it; only an HMAC of the code is stored.
Wrong codes go through the lockouts, and so does every send, which is what
limits how often codes and links go out.

Links and codes leave through the notification outbox (queue_message), in the
transaction that makes them; the outbox keeps the secret only until the message
is sent or can no longer be, and never delivers one after it expired.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import translation
from django.utils.translation import ngettext

from leb.common import clock
from leb.common.formatting import format_phone
from leb.notifications.actions import queue_message
from leb.notifications.models import Channel
from leb.security.lockouts import locked_for, register_failure

from .models import CodePurpose, PhoneCode, Profile

CODE_DIGITS = 6
# Wrong entries one texted code accepts before a new one must be asked for.
MAX_ATTEMPTS = 5
CODE_SCOPE = "accounts-code"
SEND_SCOPE = "accounts-send"
EMAIL_SALT = "leb.accounts.verify-email"


def code_ttl() -> timedelta:
    return timedelta(minutes=int(getattr(settings, "ACCOUNTS_CODE_MINUTES", 10)))


def email_link_ttl() -> timedelta:
    return timedelta(hours=int(getattr(settings, "ACCOUNTS_EMAIL_LINK_HOURS", 72)))


# --- Sending limits -------------------------------------------------------------


def send_keys(destination: str, ip: str) -> list[str]:
    return [f"to:{destination.lower()}", f"ip:{ip}"]


def send_blocked_for(destination: str, ip: str, now: datetime) -> timedelta | None:
    """How long before another code or link may go to this destination (or from this IP)."""
    return locked_for(SEND_SCOPE, send_keys(destination, ip), now)


def count_send(destination: str, ip: str, now: datetime) -> None:
    # Every send counts like a failure: five in a row lock sending for a while,
    # and the lock grows if it goes on.
    register_failure(SEND_SCOPE, send_keys(destination, ip), now)


# --- Email links ------------------------------------------------------------------


def _email_state(profile: Profile, email: str) -> str:
    proven = profile.email_verified_at.isoformat() if profile.email_verified_at else ""
    return hashlib.sha256(f"{email.lower()}|{proven}".encode()).hexdigest()[:32]


def make_email_token(user: Any) -> str:
    profile, _created = Profile.objects.get_or_create(user=user)
    # The issue time comes from leb's clock (not the signer's), so tests move time.
    issued = int(clock.now().timestamp())
    return signing.dumps(
        {"u": user.pk, "s": _email_state(profile, user.email), "t": issued},
        salt=EMAIL_SALT,
        compress=True,
    )


class LinkResult(enum.Enum):
    VERIFIED = "verified"
    ALREADY = "already"
    INVALID = "invalid"


def user_for_email_token(token: str) -> tuple[Any | None, LinkResult]:
    """The account a link proves the address of, or why it does not."""
    try:
        data = signing.loads(token, salt=EMAIL_SALT)
    except signing.BadSignature:
        return None, LinkResult.INVALID
    if not isinstance(data, dict) or not isinstance(data.get("t"), int):
        return None, LinkResult.INVALID
    age = clock.now().timestamp() - data["t"]
    if not 0 <= age <= email_link_ttl().total_seconds():
        return None, LinkResult.INVALID
    user_id = data.get("u")
    if not isinstance(user_id, int):
        return None, LinkResult.INVALID
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return None, LinkResult.INVALID
    profile, _created = Profile.objects.get_or_create(user=user)
    if hmac.compare_digest(str(data.get("s", "")), _email_state(profile, user.email)):
        return user, LinkResult.VERIFIED
    if profile.email_verified_at is not None:
        return user, LinkResult.ALREADY
    return None, LinkResult.INVALID


def _language(preferred: str = "") -> str:
    return preferred or translation.get_language() or settings.LANGUAGE_CODE


def send_verification_email(user: Any, now: datetime | None = None) -> None:
    """Queue the link that proves the account's address, in the account's
    language (else the page's); it is not delivered once it has expired."""
    now = now or clock.now()
    profile, _created = Profile.objects.get_or_create(user=user)
    link = settings.SITE_URL.rstrip("/") + reverse(
        "accounts:verify_email", args=[make_email_token(user)]
    )
    queue_message(
        kind="email_verification",
        channel=Channel.EMAIL,
        destination=user.email,
        language=_language(profile.language or ""),
        context={"link": link, "hours": int(email_link_ttl().total_seconds() // 3600)},
        # Every request is its own message (the send limits count them).
        dedupe_key=f"email_verification:{user.pk}:{uuid.uuid4().hex}",
        user=user,
        secret_keys=("link",),
        deliver_by=now + email_link_ttl(),
        now=now,
    )


def send_password_reset_email(user: Any, email: str, reset_url: str) -> None:
    """Queue the password reset link (Django's reset token), in the page's
    language; it is not delivered once the token has expired."""
    now = clock.now()
    queue_message(
        kind="password_reset",
        channel=Channel.EMAIL,
        destination=email,
        language=_language(),
        context={"reset_url": reset_url},
        dedupe_key=f"password_reset:{user.pk}:{uuid.uuid4().hex}",
        user=user,
        secret_keys=("reset_url",),
        deliver_by=now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT),
        now=now,
    )


# --- Texted codes -----------------------------------------------------------------


def hash_code(code_id: int, code: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"accounts.code:{code_id}:{code}".encode(), hashlib.sha256
    ).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def create_code(purpose: str, user: Any | None, phone: str, now: datetime) -> tuple[PhoneCode, str]:
    code = new_code()
    row = PhoneCode.objects.create(
        purpose=purpose,
        user=user,
        phone=phone,
        code_hash="",
        created_at=now,
        expires_at=now + code_ttl(),
    )
    # The row id is in the HMAC, so equal codes never have equal hashes.
    row.code_hash = hash_code(row.pk, code)
    row.save(update_fields=["code_hash"])
    return row, code


def code_minutes() -> int:
    return int(code_ttl().total_seconds() // 60)


def code_text(purpose: str, code: str, phone: str, minutes: int | None = None) -> str:
    """The text of a code's SMS, in the active language."""
    minutes = code_minutes() if minutes is None else minutes
    values = {"code": code, "number": format_phone(phone), "minutes": minutes}
    if purpose == CodePurpose.RESET_PASSWORD:
        return (
            ngettext(
                "leb: %(code)s is your code to reset the password of the account of "
                "%(number)s. It expires in %(minutes)d minute. Never share it with anyone.",
                "leb: %(code)s is your code to reset the password of the account of "
                "%(number)s. It expires in %(minutes)d minutes. Never share it with anyone.",
                minutes,
            )
            % values
        )
    return (
        ngettext(
            "leb: %(code)s is your code to verify %(number)s. It expires in %(minutes)d "
            "minute. Never share it with anyone.",
            "leb: %(code)s is your code to verify %(number)s. It expires in %(minutes)d "
            "minutes. Never share it with anyone.",
            minutes,
        )
        % values
    )


def send_code(purpose: str, user: Any | None, phone: str, now: datetime) -> PhoneCode:
    """A new code for this number, its text queued in the same transaction, in
    the page's language. A code for no account (a reset asked for a number
    without a proven account) is stored and never sent."""
    with transaction.atomic():
        row, code = create_code(purpose, user, phone, now)
        if user is not None:
            queue_message(
                kind="phone_code",
                channel=Channel.SMS,
                destination=phone,
                language=_language(),
                context={
                    "purpose": purpose,
                    "code": code,
                    "number": phone,
                    "minutes": code_minutes(),
                },
                dedupe_key=f"phone_code:{row.pk}",
                user=user,
                secret_keys=("code",),
                # Never texted once it no longer works.
                deliver_by=row.expires_at,
                now=now,
            )
    return row


class CodeState(enum.Enum):
    OPEN = "open"
    USED = "used"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"


def code_state(row: PhoneCode, now: datetime) -> CodeState:
    if row.used_at is not None:
        return CodeState.USED
    if now >= row.expires_at:
        return CodeState.EXPIRED
    if row.attempts >= MAX_ATTEMPTS:
        return CodeState.EXHAUSTED
    return CodeState.OPEN


def code_keys(row: PhoneCode, ip: str) -> list[str]:
    return [f"to:{row.phone}", f"ip:{ip}"]


def code_matches(row: PhoneCode, code: str) -> bool:
    expected = hash_code(row.pk, code)
    # A row with no account (unknown number) never matches, but takes as long.
    return hmac.compare_digest(row.code_hash.encode(), expected.encode()) and (
        row.user_id is not None
    )


def count_wrong_code(row: PhoneCode, ip: str, now: datetime) -> timedelta | None:
    PhoneCode.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1)
    return register_failure(CODE_SCOPE, code_keys(row, ip), now)


def code_locked_for(row: PhoneCode, ip: str, now: datetime) -> timedelta | None:
    return locked_for(CODE_SCOPE, code_keys(row, ip), now)


def use_code(row: PhoneCode, now: datetime) -> bool:
    """Mark the code used; False if another request used it first."""
    return bool(PhoneCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now))
