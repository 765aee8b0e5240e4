"""Security headers for every response: a strict Content-Security-Policy,
Permissions-Policy and Cross-Origin-Opener-Policy.

Templates get `request.csp_nonce` for the rare script that must be inline;
the portal itself ships none. A view that needs a different policy sets its
own Content-Security-Policy header, which is then left alone."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
)


def form_action_hosts() -> list[str]:
    """Payment pages a form may post to (e.g. a hosted checkout), from
    settings.PAYMENT_FORM_ACTION_HOSTS; none by default."""
    hosts = getattr(settings, "PAYMENT_FORM_ACTION_HOSTS", ()) or ()
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    return [h.strip() for h in hosts if h and h.strip()]


def exempt_prefixes() -> tuple[str, ...]:
    """Paths served by third-party pages that cannot meet the policy (the
    interactive API docs inject inline styles); settings.CSP_EXEMPT_PATH_PREFIXES."""
    return tuple(getattr(settings, "CSP_EXEMPT_PATH_PREFIXES", ("/api/docs",)))


def content_security_policy(nonce: str) -> str:
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", f"'nonce-{nonce}'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", *form_action_hosts()],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if not request.path.startswith(exempt_prefixes()):
            response.headers.setdefault("Content-Security-Policy", content_security_policy(nonce))
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
