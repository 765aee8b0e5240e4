from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from leb.lines.identifiers import normalize_msisdn


def find_user(identifier: str) -> Any | None:
    """The account an email address, a mobile number or (for staff accounts
    made in the back office) a username belongs to."""
    identifier = (identifier or "").strip()
    user_model = get_user_model()
    if "@" in identifier:
        return user_model.objects.filter(email__iexact=identifier).first()
    try:
        phone = normalize_msisdn(identifier)
    except ValidationError:
        return user_model.objects.filter(username=identifier).first() if identifier else None
    return user_model.objects.filter(profile__phone=phone).first()


def lockout_identifier(identifier: str) -> str:
    """What sign-in failures are counted against: the account's identifier in
    one spelling, so "+852 9400 0001", "0085294000001" and "9400 0001" share
    one count (and one lock) rather than each getting five tries."""
    identifier = (identifier or "").strip()
    if "@" in identifier:
        return identifier.lower()
    try:
        return normalize_msisdn(identifier)
    except ValidationError:
        return identifier.lower()


class EmailOrPhoneBackend(ModelBackend):
    """Sign in with an email address or a mobile number and a password."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any | None:
        if username is None or password is None:
            return None
        user = find_user(username)
        if user is None:
            # Spend the same time as a real check, so timing tells nothing.
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
