"""A fixed-window counter per client in Django's cache: good enough to stop
someone enumerating numbers, with no extra service to run."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from leb import clock


def client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is set by the client unless a trusted
    # proxy rewrites REMOTE_ADDR, so it cannot key a limit.
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def quick_check_limit() -> tuple[int, int]:
    """(requests, seconds) from settings.PORTAL_QUICK_CHECK_RATE, "10/60" by default."""
    raw = str(getattr(settings, "PORTAL_QUICK_CHECK_RATE", "10/60"))
    count, _, seconds = raw.partition("/")
    return int(count), max(1, int(seconds or 60))


def hit(scope: str, key: str, limit: int, window: int) -> bool:
    """Count one attempt; False once `limit` attempts were made in this window."""
    # The injectable clock keeps windows deterministic under a frozen clock.
    bucket = int(clock.now().timestamp() // window)
    cache_key = f"ratelimit:{scope}:{key}:{bucket}"
    cache.add(cache_key, 0, window + 1)
    try:
        count = cache.incr(cache_key)
    except ValueError:
        # Evicted between add and incr: start again.
        cache.set(cache_key, 1, window + 1)
        count = 1
    return count <= limit
