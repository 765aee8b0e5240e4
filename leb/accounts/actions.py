"""Writes to accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest

from leb.common import clock
from leb.common.transactions import one_transaction

from .middleware import SESSION_EPOCH_KEY
from .models import Profile


@one_transaction
def do_register_user(
    *, email: str, phone: str, password: str, language: str, verified: bool = False
) -> Any:
    """A new subscriber account signing in with an email address or a mobile
    number. `verified=True` is for accounts whose contact details are already
    known to be theirs (the demo, imports); sign-ups prove them afterwards."""
    user = get_user_model().objects.create_user(
        username=email.lower() if email else phone, email=email.lower(), password=password
    )
    now = clock.now() if verified else None
    Profile.objects.create(
        user=user,
        phone=phone or None,
        language=language,
        email_verified_at=now if email else None,
        phone_verified_at=now if phone else None,
    )
    return user


@one_transaction
def do_mark_contacts_verified(user: Any, *, now: datetime | None = None) -> Profile:
    """Count the account's current email address and mobile number as proven."""
    now = now or clock.now()
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    if user.email and profile.email_verified_at is None:
        profile.email_verified_at = now
    if profile.phone and profile.phone_verified_at is None:
        profile.phone_verified_at = now
    profile.save(update_fields=["email_verified_at", "phone_verified_at"])
    return profile


@one_transaction
def do_verify_email(user: Any, *, now: datetime) -> Profile:
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    if profile.email_verified_at is None:
        profile.email_verified_at = now
        profile.save(update_fields=["email_verified_at"])
    return profile


@one_transaction
def do_verify_phone(user: Any, phone: str, *, now: datetime) -> bool:
    """Prove the number; False if the account's number changed since the code was sent."""
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    if profile.phone != phone:
        return False
    if profile.phone_verified_at is None:
        profile.phone_verified_at = now
        profile.save(update_fields=["phone_verified_at"])
    return True


@one_transaction
def do_reset_password(user: Any, password: str) -> None:
    """A new password, and every session of the account ends (the epoch moves)."""
    user_model = get_user_model()
    locked = user_model.objects.select_for_update().get(pk=user.pk)
    locked.set_password(password)
    locked.save(update_fields=["password"])
    profile, _ = Profile.objects.select_for_update().get_or_create(user=locked)
    profile.session_epoch += 1
    profile.save(update_fields=["session_epoch"])


def stamp_session(request: HttpRequest, user: Any) -> None:
    """Tie the session to the account's current epoch (see SessionEpochMiddleware)
    and carry the account's time zone into it."""
    from leb.common.formatting import TZ_SESSION_KEY

    profile, _ = Profile.objects.get_or_create(user=user)
    request.session[SESSION_EPOCH_KEY] = profile.session_epoch
    if profile.time_zone:
        request.session[TZ_SESSION_KEY] = profile.time_zone


@one_transaction
def do_save_preferences(user: Any, *, language: str, time_zone: str) -> Profile:
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    profile.language = language
    profile.time_zone = time_zone
    profile.save(update_fields=["language", "time_zone"])
    return profile


@one_transaction
def do_sign_out_everywhere(user: Any) -> None:
    """Every session of this account, on every device, ends at its next request."""
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    profile.session_epoch += 1
    profile.save(update_fields=["session_epoch"])
