"""Writes of the API app: personal tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

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


# Per database vendor: the statement, and each selected column's converters.
_LOOKUP: dict[str, tuple[str, list[tuple[Any, list[Any]]]]] = {}


def _lookup_statement() -> tuple[str, list[tuple[Any, list[Any]]]]:
    """One plain SELECT of the live token by its prefix and its active user,
    every concrete column of both, built once from the models' metadata:
    compiling the ORM query with its join cost more CPU per API call than
    the rest of the authentication."""
    found = _LOOKUP.get(connection.vendor)
    if found is not None:
        return found
    q = connection.ops.quote_name
    token_meta, user_meta = PersonalToken._meta, get_user_model()._meta

    def column(meta: Any, alias: str, name: str) -> str:
        return f"{alias}.{q(meta.get_field(name).column)}"

    selected: list[tuple[str, Any, Any]] = [
        ("t", token_meta, f) for f in token_meta.concrete_fields
    ]
    selected += [("u", user_meta, f) for f in user_meta.concrete_fields]
    # Only names from the models' metadata go into the text; values are bound.
    sql = (
        f"SELECT {', '.join(f'{alias}.{q(f.column)}' for alias, _m, f in selected)}"  # noqa: S608
        f" FROM {q(token_meta.db_table)} t JOIN {q(user_meta.db_table)} u"
        f" ON u.{q(user_meta.pk.column)} = {column(token_meta, 't', 'user')}"
        f" WHERE {column(token_meta, 't', 'prefix')} = %s"
        f" AND {column(token_meta, 't', 'revoked_at')} IS NULL"
        f" AND {column(user_meta, 'u', 'is_active')} = %s"
    )
    # What the ORM would apply to each column (SQLite: text to datetimes, 0/1 to booleans).
    converters = []
    for _alias, meta, field in selected:
        expression: Any = field.get_col(meta.db_table)
        found_converters = [*connection.ops.get_db_converters(expression)]
        found_converters += expression.get_db_converters(connection)
        converters.append((expression, found_converters))
    _LOOKUP[connection.vendor] = (sql, converters)
    return sql, converters


def _live_token(prefix: str) -> PersonalToken | None:
    """The unrevoked token with this prefix, its active user loaded with it
    (what select_related("user") gives)."""
    sql, converters = _lookup_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix, True])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (expression, functions) in zip(row, converters, strict=True):
        for convert in functions:
            value = convert(value, expression, connection)
        values.append(value)
    token_fields = PersonalToken._meta.concrete_fields
    user_model = get_user_model()
    token = PersonalToken.from_db(
        connection.alias, [f.attname for f in token_fields], values[: len(token_fields)]
    )
    user = user_model.from_db(
        connection.alias,
        [f.attname for f in user_model._meta.concrete_fields],
        values[len(token_fields) :],
    )
    token.user = user
    return token


def authenticate_token(clear: str, *, now: datetime | None = None) -> PersonalToken | None:
    """The live token this clear text proves, with its user; None otherwise."""
    prefix = tokens.split(clear)
    if prefix is None:
        return None
    token = _live_token(prefix)
    if token is None or not tokens.matches(clear.strip(), token.token_hash):
        return None
    now = now or clock.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        PersonalToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
