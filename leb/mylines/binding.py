"""Proving that a user holds a line, and binding it to their account.

Two proofs: the eSIM activation code (SGP.22, printed under the QR code) or a
6-digit code texted to the number. Every entry goes through the "bind"
lockouts; an unknown ICCID/number pair fails exactly like a wrong code."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils.translation import ngettext

from leb.common.formatting import format_phone
from leb.lines.actions import do_set_line_owner, lock_line
from leb.lines.models import Line
from leb.lines.queries import live_line_for_number
from leb.notifications.actions import queue_message
from leb.notifications.models import Channel

from .models import BindingChallenge

SCOPE = "bind"
CODE_DIGITS = 6
# Wrong entries one texted code accepts before a new one must be requested.
MAX_ATTEMPTS = 5


def code_ttl() -> timedelta:
    return timedelta(minutes=int(getattr(settings, "MYLINES_BIND_CODE_MINUTES", 10)))


def sms_per_hour() -> int:
    return int(getattr(settings, "MYLINES_BIND_SMS_PER_HOUR", 5))


def normalize_activation_code(value: str) -> str:
    """`LPA:1$SMDP.Example.com$ABC` -> `1$smdp.example.com$ABC`: the LPA: prefix
    is optional and the SM-DP+ host is case-insensitive; the matching ID is not."""
    code = "".join(str(value or "").split())
    if code[:4].upper() == "LPA:":
        code = code[4:]
    parts = code.split("$")
    if len(parts) > 1:
        parts[1] = parts[1].lower()
    return "$".join(parts)


def activation_code_matches(line: Line, entered: str) -> bool:
    stored = normalize_activation_code(line.activation_code)
    given = normalize_activation_code(entered)
    # compare_digest on both branches: the time taken does not depend on
    # whether the line has a code or where the strings differ.
    return hmac.compare_digest(stored.encode(), given.encode()) and bool(stored)


def find_line(iccid: str, msisdn: str) -> Line | None:
    line = live_line_for_number(msisdn)
    if line is None or not hmac.compare_digest(line.iccid.encode(), iccid.encode()):
        return None
    return line


def lockout_keys(user: Any, line: Line | None, iccid: str, msisdn: str, ip: str) -> list[str]:
    # An unknown pair gets a key of its own, so it locks after as many
    # failures as a real line does and the lock reveals nothing.
    line_key = f"line:{line.pk}" if line is not None else f"pair:{iccid}:{msisdn}"
    return [f"user:{user.pk}", line_key, f"ip:{ip}"]


def hash_code(user_id: int, code: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"mylines.bind:{user_id}:{code}".encode(), hashlib.sha256
    ).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def recent_challenges(user: Any, now: datetime) -> int:
    return BindingChallenge.objects.filter(
        user=user, created_at__gt=now - timedelta(hours=1)
    ).count()


def create_challenge(
    user: Any, line: Line | None, iccid: str, msisdn: str, now: datetime
) -> tuple[BindingChallenge, str]:
    code = new_code()
    challenge = BindingChallenge.objects.create(
        user=user,
        line=line,
        iccid=iccid,
        msisdn=msisdn,
        code_hash=hash_code(user.pk, code),
        created_at=now,
        expires_at=now + code_ttl(),
    )
    return challenge, code


def code_minutes() -> int:
    return int(code_ttl().total_seconds() // 60)


def code_text(code: str, msisdn: str, minutes: int) -> str:
    """The text of the binding code's SMS, in the active language."""
    return ngettext(
        "leb: %(code)s is your code to link %(number)s to your account. "
        "It expires in %(minutes)d minute. Never share it with anyone.",
        "leb: %(code)s is your code to link %(number)s to your account. "
        "It expires in %(minutes)d minutes. Never share it with anyone.",
        minutes,
    ) % {"code": code, "number": format_phone(msisdn), "minutes": minutes}


def send_challenge(
    user: Any, line: Line | None, iccid: str, msisdn: str, now: datetime, *, language: str
) -> BindingChallenge:
    """A new challenge, and its code queued for the line's number in the same
    transaction. An unknown pair gets a challenge too, and no SMS: the next
    page looks the same either way."""
    with transaction.atomic():
        challenge, code = create_challenge(user, line, iccid, msisdn, now)
        if line is not None:
            queue_message(
                kind="line_binding_code",
                channel=Channel.SMS,
                destination=msisdn,
                language=language,
                context={"code": code, "number": msisdn, "minutes": code_minutes()},
                dedupe_key=f"binding:{challenge.pk}",
                user=user,
                secret_keys=("code",),
                # Never texted once it no longer works.
                deliver_by=challenge.expires_at,
                now=now,
            )
    return challenge


class ChallengeState(enum.Enum):
    OPEN = "open"
    USED = "used"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"


def challenge_state(challenge: BindingChallenge, now: datetime) -> ChallengeState:
    if challenge.used_at is not None:
        return ChallengeState.USED
    if now >= challenge.expires_at:
        return ChallengeState.EXPIRED
    if challenge.attempts >= MAX_ATTEMPTS:
        return ChallengeState.EXHAUSTED
    return ChallengeState.OPEN


def code_matches(challenge: BindingChallenge, code: str) -> bool:
    expected = hash_code(challenge.user_id, code)
    return hmac.compare_digest(challenge.code_hash.encode(), expected.encode()) and (
        challenge.line_id is not None
    )


def count_wrong_code(challenge: BindingChallenge) -> None:
    BindingChallenge.objects.filter(pk=challenge.pk).update(attempts=F("attempts") + 1)


def use_challenge(challenge: BindingChallenge, now: datetime) -> bool:
    """Mark the code used; False if another request used it first."""
    return bool(
        BindingChallenge.objects.filter(pk=challenge.pk, used_at__isnull=True).update(used_at=now)
    )


def line_is_free_for(line: Line, user: Any) -> bool:
    owner_id = Line.objects.filter(pk=line.pk).values_list("owner_id", flat=True).first()
    return owner_id in (None, user.pk)


class BindResult(enum.Enum):
    BOUND = "bound"
    ALREADY_YOURS = "already_yours"
    OWNED_BY_SOMEONE_ELSE = "owned_by_someone_else"


def bind_line(line: Line, user: Any, now: datetime) -> BindResult:
    """Give the line to the user unless another account holds it. The check
    runs under the line's row lock, so two accounts cannot both win."""
    with transaction.atomic():
        locked = lock_line(line.pk)
        if locked.owner_id == user.pk:
            return BindResult.ALREADY_YOURS
        if locked.owner_id is not None:
            return BindResult.OWNED_BY_SOMEONE_ELSE
        do_set_line_owner(locked, user, actor=f"user:{user.pk}", now=now)
        return BindResult.BOUND


def unbind_line(line: Line, user: Any, now: datetime) -> None:
    do_set_line_owner(line, None, actor=f"user:{user.pk}", now=now)
