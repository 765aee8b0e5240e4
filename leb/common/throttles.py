"""Rate limits per client address, kept in Django's cache so every web
process shares them."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import SimpleRateThrottle

from .cache import cache_call
from .ratelimit import client_ip

__all__ = ["ClientIPThrottle", "client_ip", "line_check_throttle"]


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
        # No reachable cache: allow rather than fail the request.
        return cache_call(lambda: SimpleRateThrottle.allow_request(self, request), True)

    def get_cache_key(self, request: HttpRequest) -> str | None:
        return f"leb:api:throttle:{self.scope}:{client_ip(request)}"


line_check_throttle = ClientIPThrottle("line_check", "API_LINE_CHECK_RATE", "10/m")
