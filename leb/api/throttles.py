"""Rate limits per client address, kept in Django's cache so every web
process shares them."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import SimpleRateThrottle


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or with API_NUM_PROXIES trusted proxies in front, the
    address the nearest of them saw. X-Forwarded-For is spoofable otherwise."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    proxies = int(getattr(settings, "API_NUM_PROXIES", 0) or 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in str(forwarded).split(",") if a.strip()]
    if not addresses:
        return remote
    return addresses[-min(proxies, len(addresses))]


class ClientIPThrottle(SimpleRateThrottle):
    """`rate_setting` names a settings entry like "10/m" (empty: no limit),
    read on every request so it can change without a restart of the API."""

    def __init__(self, scope: str, rate_setting: str, default_rate: str) -> None:
        self.scope = scope
        self.rate_setting = rate_setting
        self.default_rate = default_rate
        super().__init__(rate=default_rate)

    def current_rate(self) -> str:
        return str(getattr(settings, self.rate_setting, self.default_rate) or "")

    def allow_request(self, request: HttpRequest) -> bool:
        rate = self.current_rate()
        if not rate:
            return True
        self.rate = rate
        self.num_requests, self.duration = self.parse_rate(rate)
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str | None:
        return f"leb:api:throttle:{self.scope}:{client_ip(request)}"


line_check_throttle = ClientIPThrottle("line_check", "API_LINE_CHECK_RATE", "10/m")
