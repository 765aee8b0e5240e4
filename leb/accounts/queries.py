"""Reads about accounts other apps rely on.

Receipts, reminders and password resets go only to contact details the
account has proven: use these rather than `user.email` / `profile.phone`."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, CharField, F, Value, When

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


def verified_contact_annotations() -> dict[str, Any]:
    """For a query on users: `verified_email` and `verified_phone` columns,
    "" where the address or number is not proven, so lists of recipients can
    be read in one query: `.annotate(**verified_contact_annotations())`."""
    return {
        "verified_email": Case(
            When(profile__email_verified_at__isnull=False, then=F("email")),
            default=Value(""),
            output_field=CharField(),
        ),
        "verified_phone": Case(
            When(profile__phone_verified_at__isnull=False, then=F("profile__phone")),
            default=Value(""),
            output_field=CharField(),
        ),
    }
