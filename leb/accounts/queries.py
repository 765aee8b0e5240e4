"""Reads about accounts other apps rely on.

Receipts, reminders and password resets go only to contact details the
account has proven: use these rather than `user.email` / `profile.phone`."""

from __future__ import annotations

from typing import Any

from .models import Profile


def _profile(user: Any) -> Profile | None:
    try:
        profile: Profile = user.profile
        return profile
    except Profile.DoesNotExist:
        return None


def email_verified(user: Any) -> bool:
    profile = _profile(user)
    return bool(user.email) and profile is not None and profile.email_verified_at is not None


def phone_verified(user: Any) -> bool:
    profile = _profile(user)
    return profile is not None and bool(profile.phone) and profile.phone_verified_at is not None


def verified_email(user: Any) -> str:
    """The account's email address if it is proven, else ""."""
    return str(user.email) if email_verified(user) else ""


def verified_phone(user: Any) -> str:
    """The account's mobile number (E.164) if it is proven, else ""."""
    profile = _profile(user)
    return str(profile.phone) if profile is not None and phone_verified(user) else ""
