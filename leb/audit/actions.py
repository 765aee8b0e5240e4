from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from leb.common import clock

from .models import AuditAction, AuditEntry

GENESIS = "0" * 64
# Arbitrary constant naming the advisory lock that orders the chain on PostgreSQL.
_CHAIN_LOCK = 0x1EB_A0D1


def entry_hash(
    prev_hash: str, at: datetime, actor: str, action: str, target: str, data: dict[str, Any]
) -> str:
    payload = json.dumps(
        [prev_hash, at.isoformat(), actor, action, target, data], sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def record(
    actor: str,
    action: AuditAction | str,
    target: str,
    data: dict[str, Any],
    *,
    now: datetime | None = None,
) -> AuditEntry:
    """Append to the chain in the caller's transaction. `action` must be an
    AuditAction (ValueError otherwise)."""
    action = AuditAction(action)
    now = now or clock.now()
    data = json.loads(json.dumps(data, default=str))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        last = AuditEntry.objects.order_by("-pk").values_list("entry_hash", flat=True).first()
        prev = last or GENESIS
        return AuditEntry.objects.create(
            at=now,
            actor=actor,
            action=action.value,
            target=target,
            data=data,
            prev_hash=prev,
            entry_hash=entry_hash(prev, now, actor, action.value, target, data),
        )


def verify_chain() -> list[str]:
    problems = []
    prev = GENESIS
    for entry in AuditEntry.objects.order_by("pk").iterator():
        if entry.prev_hash != prev:
            problems.append(
                f"entry {entry.pk}: chain broken (an entry before it was changed or removed)"
            )
        expected = entry_hash(
            entry.prev_hash, entry.at, entry.actor, entry.action, entry.target, entry.data
        )
        if expected != entry.entry_hash:
            problems.append(f"entry {entry.pk}: content does not match its hash")
        prev = entry.entry_hash
    return problems
