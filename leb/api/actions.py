"""Writes of the API app: personal tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.transactions import one_transaction, own_transactions

from . import tokens
from .models import PersonalToken

# A token's last use is written at most this often, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@one_transaction
def do_create_personal_token(
    user: Any, name: str, *, actor: str = "", now: datetime | None = None
) -> tuple[PersonalToken, str]:
    """A new token for `user`. Returns the row and the clear token, which is
    never stored and cannot be shown again."""
    now = now or clock.now()
    prefix, clear, digest = tokens.generate()
    token = PersonalToken.objects.create(
        user=user, name=name.strip()[:100], prefix=prefix, token_hash=digest, created_at=now
    )
    record(
        actor or f"user:{user.get_username()}",
        AuditAction.API_TOKEN_CREATE,
        f"api_token:{token.pk}",
        {"user": user.pk, "name": token.name, "prefix": prefix},
        now=now,
    )
    return token, clear


@own_transactions
def do_revoke_personal_token(
    token: PersonalToken, *, actor: str = "", now: datetime | None = None
) -> PersonalToken:
    """Revoke once; revoking again changes nothing."""
    now = now or clock.now()
    with transaction.atomic():
        updated = PersonalToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if updated:
            record(
                actor or "system",
                AuditAction.API_TOKEN_REVOKE,
                f"api_token:{token.pk}",
                {"user": token.user_id, "prefix": token.prefix},
                now=now,
            )
    token.refresh_from_db(fields=["revoked_at"])
    return token


def authenticate_token(clear: str, *, now: datetime | None = None) -> PersonalToken | None:
    """The live token this clear text proves, with its user; None otherwise."""
    prefix = tokens.split(clear)
    if prefix is None:
        return None
    token = (
        PersonalToken.objects.select_related("user")
        .filter(prefix=prefix, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None or not tokens.matches(clear.strip(), token.token_hash):
        return None
    now = now or clock.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        PersonalToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
