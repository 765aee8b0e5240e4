"""Signed links that let a guest (no account) read and answer their ticket."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core import signing

from leb.common.signing import ClockSigner

from .models import Ticket

SALT = "leb.support.ticket"


def max_age_seconds() -> int:
    return int(getattr(settings, "SUPPORT_GUEST_LINK_DAYS", 180)) * 24 * 60 * 60


def make_token(ticket: Ticket) -> str:
    # Stamped by leb's clock: the link sent by mail and the one the page
    # redirects to in the same request are the same, and its age follows the
    # clock the rest of leb runs on.
    return ClockSigner(salt=SALT).sign_object(str(ticket.public_id))


def ticket_from_token(token: str) -> Ticket | None:
    """The guest ticket the token names; None for a tampered, expired or
    unknown one, so every failure looks the same."""
    try:
        value = ClockSigner(salt=SALT).unsign_object(token, max_age=max_age_seconds())
        public_id = uuid.UUID(str(value))
    except (signing.BadSignature, ValueError):
        return None
    # Only guest tickets: an account's ticket is read signed in, never by link.
    return Ticket.objects.filter(public_id=public_id, user__isnull=True).first()
