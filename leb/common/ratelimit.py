"""A fixed-window counter per client in Django's cache: good enough to stop
someone enumerating numbers, with no extra service to run."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from leb.common import clock
from leb.common.cache import cache_call


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or with LEB_API_NUM_PROXIES trusted proxies in front, the
    address the nearest of them saw. X-Forwarded-For is spoofable otherwise,
    so it never keys a limit unless a trusted proxy wrote it."""
    remote = str(request.META.get("REMOTE_ADDR") or "unknown")
    proxies = int(getattr(settings, "API_NUM_PROXIES", 0) or 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in str(forwarded).split(",") if a.strip()]
    if not addresses:
        return remote
    return addresses[-min(proxies, len(addresses))]


def quick_check_limit() -> tuple[int, int]:
    """(requests, seconds) from settings.PORTAL_QUICK_CHECK_RATE, "10/60" by default."""
    raw = str(getattr(settings, "PORTAL_QUICK_CHECK_RATE", "10/60"))
    count, _, seconds = raw.partition("/")
    return int(count), max(1, int(seconds or 60))


def hit(scope: str, key: str, limit: int, window: int) -> bool:
    """Count one attempt; False once `limit` attempts were made in this window.
    Without a reachable cache nothing is counted and the attempt is allowed:
    these limits slow enumeration down, while the lockouts that guard secrets
    live in the database."""
    # The injectable clock keeps windows deterministic under a frozen clock.
    bucket = int(clock.now().timestamp() // window)
    cache_key = f"ratelimit:{scope}:{key}:{bucket}"

    def count() -> int:
        cache.add(cache_key, 0, window + 1)
        try:
            return int(cache.incr(cache_key))
        except ValueError:
            # Evicted between add and incr: start again.
            cache.set(cache_key, 1, window + 1)
            return 1

    return cache_call(count, 0) <= limit
