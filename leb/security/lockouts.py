"""Escalating lockouts for every secret entry.

Failures are counted per key (account, line, caller number, IP address); the
lock grows with the count: 5 failures lock for 15 minutes, 10 for 30 minutes,
15 for an hour, 20 or more for a day. A quiet day forgets the count. The
caller asks `locked_for` before checking the secret, so a locked key learns
nothing, whether the secret was right or not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from .models import Lockout

logger = logging.getLogger(__name__)

STEPS = [
    (20, timedelta(hours=24)),
    (15, timedelta(hours=1)),
    (10, timedelta(minutes=30)),
    (5, timedelta(minutes=15)),
]
FORGET_AFTER = timedelta(hours=24)
# This many failures on one scope within ALERT_WINDOW is logged as an alert.
ALERT_THRESHOLD = 50
ALERT_WINDOW = timedelta(minutes=10)


def key_hash(scope: str, key: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"{scope}:{key}".encode(), hashlib.sha256
    ).hexdigest()


def lock_duration(failures: int) -> timedelta | None:
    for threshold, duration in STEPS:
        if failures >= threshold:
            return duration
    return None


def locked_for(scope: str, keys: Iterable[str], now: datetime) -> timedelta | None:
    """How long the longest lock on any of the keys still runs, or None."""
    hashes = [key_hash(scope, k) for k in keys if k]
    until = Lockout.objects.filter(
        scope=scope, key_hash__in=hashes, locked_until__gt=now
    ).aggregate(until=Max("locked_until"))["until"]
    return until - now if until else None


def register_failure(scope: str, keys: Iterable[str], now: datetime) -> timedelta | None:
    """Count a failure against every key; returns the lock now in force, if any."""
    longest: timedelta | None = None
    for key in [k for k in keys if k]:
        digest = key_hash(scope, key)
        with transaction.atomic():
            row = Lockout.objects.select_for_update().filter(scope=scope, key_hash=digest).first()
            if row is None:
                try:
                    with transaction.atomic():
                        row = Lockout.objects.create(
                            scope=scope, key_hash=digest, last_failure_at=now
                        )
                except IntegrityError:
                    row = Lockout.objects.select_for_update().get(scope=scope, key_hash=digest)
            if now - row.last_failure_at > FORGET_AFTER:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            duration = (
                lock_duration(row.failures) if row.failures % 5 == 0 or row.failures > 20 else None
            )
            if duration:
                row.locked_until = now + duration
                longest = max(longest or duration, duration)
            row.save(update_fields=["failures", "last_failure_at", "locked_until"])
    _alert_on_spike(scope, now)
    return longest


def register_success(scope: str, keys: Iterable[str]) -> None:
    """A correct secret clears the count for these keys (not for others, e.g. the IP)."""
    Lockout.objects.filter(
        scope=scope, key_hash__in=[key_hash(scope, k) for k in keys if k]
    ).delete()


def _alert_on_spike(scope: str, now: datetime) -> None:
    recent = Lockout.objects.filter(scope=scope, last_failure_at__gte=now - ALERT_WINDOW).count()
    if recent >= ALERT_THRESHOLD:
        logger.warning(
            "security alert: %d keys failing on %s in the last %s", recent, scope, ALERT_WINDOW
        )
