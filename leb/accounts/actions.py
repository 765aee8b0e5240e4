"""Writes to accounts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest

from .middleware import SESSION_EPOCH_KEY
from .models import Profile


@transaction.atomic
def do_register_user(*, email: str, phone: str, password: str, language: str) -> Any:
    """A new subscriber account signing in with an email address or a mobile number."""
    user = get_user_model().objects.create_user(
        username=email.lower() if email else phone, email=email.lower(), password=password
    )
    Profile.objects.create(user=user, phone=phone or None, language=language)
    return user


def stamp_session(request: HttpRequest, user: Any) -> None:
    """Tie the session to the account's current epoch (see SessionEpochMiddleware)
    and carry the account's time zone into it."""
    from leb.portal.formatting import TZ_SESSION_KEY

    profile, _ = Profile.objects.get_or_create(user=user)
    request.session[SESSION_EPOCH_KEY] = profile.session_epoch
    if profile.time_zone:
        request.session[TZ_SESSION_KEY] = profile.time_zone


@transaction.atomic
def do_save_preferences(user: Any, *, language: str, time_zone: str) -> Profile:
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    profile.language = language
    profile.time_zone = time_zone
    profile.save(update_fields=["language", "time_zone"])
    return profile


@transaction.atomic
def do_sign_out_everywhere(user: Any) -> None:
    """Every session of this account, on every device, ends at its next request."""
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    profile.session_epoch += 1
    profile.save(update_fields=["session_epoch"])
