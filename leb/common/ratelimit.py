"""A fixed-window counter per client in Django's cache: good enough to stop
someone enumerating numbers, with no extra service to run."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from leb.common import clock
from leb.common.cache import cache_call


def trusted_proxies() -> int:
    """How many proxies in front of leb append to X-Forwarded-For
    (settings.NUM_PROXIES, LEB_NUM_PROXIES)."""
    return max(0, int(getattr(settings, "NUM_PROXIES", 0) or 0))


def client_ip(request: HttpRequest) -> str:
    """The client's address, for every per-address limit and lockout: the
    portal's, the API's and the agents' (one function, so they agree).

    REMOTE_ADDR, or with NUM_PROXIES trusted proxies in front, the address
    the outermost of them saw: each proxy appends the address it was reached
    from, so with N proxies the client is the N-th entry from the end of
    X-Forwarded-For. Entries before it were written by the client and are
    never read, so a spoofed header cannot pick a bucket; an entry that is
    not an IP address falls back to REMOTE_ADDR."""
    remote = str(request.META.get("REMOTE_ADDR") or "unknown")
    proxies = trusted_proxies()
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in str(forwarded).split(",") if a.strip()]
    if not addresses:
        return remote
    candidate = addresses[-min(proxies, len(addresses))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


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
