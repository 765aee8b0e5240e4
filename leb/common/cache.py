"""The shared cache (Redis when LEB_REDIS_URL is set) is an aid to a page,
never a condition of it: when the cache cannot be reached, callers get their
default and leb stops asking it for a while, so an outage costs one timeout
per process instead of one per request. Lockouts on secrets are kept in the
database, not here, so they hold during an outage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.signals import setting_changed
from django.dispatch import receiver

T = TypeVar("T")

logger = logging.getLogger(__name__)

# Seconds a process goes without the cache after it failed to answer.
OUTAGE_PAUSE_SECONDS = 15.0
_paused_until = 0.0

try:
    from redis.exceptions import RedisError

    UNREACHABLE: tuple[type[BaseException], ...] = (OSError, RedisError)
except ImportError:  # pragma: no cover - redis is in the lock file
    UNREACHABLE = (OSError,)


def cache_call(operation: Callable[[], T], default: T) -> T:
    """`operation()`, or `default` while the cache is unreachable."""
    global _paused_until
    if time.monotonic() < _paused_until:
        return default
    try:
        return operation()
    except UNREACHABLE as exc:
        _paused_until = time.monotonic() + OUTAGE_PAUSE_SECONDS
        logger.warning(
            "cache unreachable (%s): going on without it for %d s",
            type(exc).__name__,
            OUTAGE_PAUSE_SECONDS,
        )
        return default


def resume() -> None:
    """Ask the cache again at the next call (tests, and after a failover)."""
    global _paused_until
    _paused_until = 0.0


@receiver(setting_changed)
def _forget_outage(setting: str, **kwargs: Any) -> None:
    # Another cache configured: nothing is known about it yet.
    if setting == "CACHES":
        resume()
