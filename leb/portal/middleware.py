"""Security headers for every response: a strict Content-Security-Policy,
Permissions-Policy and Cross-Origin-Opener-Policy.

Templates get `request.csp_nonce` for the rare script that must be inline;
the portal itself ships none. A view that needs a different policy sets its
own Content-Security-Policy header, which is then left alone."""

from __future__ import annotations

import functools
import logging
import secrets
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("leb.site_url")
DEFAULT_PORTS = {"http": "80", "https": "443"}

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


def site_origin() -> str:
    """scheme://host[:port] of settings.SITE_URL: where payment providers send
    the payer back, so forms may lead there even from another host name."""
    parts = urlsplit(str(getattr(settings, "SITE_URL", "")))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


_ASK = object()


def _checked_host(request: HttpRequest) -> str | None:
    """The request's host, or None when the host check refuses it."""
    try:
        return request.get_host()
    except DisallowedHost:
        return None


def _host_port(scheme: str, netloc: str) -> tuple[str, str]:
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = str(parts.port or DEFAULT_PORTS.get(scheme, ""))
    except ValueError:
        port = ""
    return (parts.hostname or "").lower(), port


class HostMismatchWarning:
    """Warns once per process, loudly, when a request arrives under a host
    other than SITE_URL's: every link leb builds (payment returns, receipts,
    messages) then points somewhere the visitor did not come from."""

    # Addresses already found to be the site's own, so a request under one
    # costs a set lookup; bounded, as ALLOWED_HOSTS may allow any host.
    KNOWN_GOOD = 64

    def __init__(self) -> None:
        self.warned = False
        self._lock = threading.Lock()
        self._good: set[tuple[str, str, str]] = set()

    def observe(self, request: HttpRequest, seen: object = _ASK) -> None:
        """`seen`: the request's host if the caller has it already (None:
        refused by the host check)."""
        if self.warned:
            return
        site_url = str(getattr(settings, "SITE_URL", ""))
        if seen is _ASK:
            seen = _checked_host(request)
        if seen is None:
            return  # refused by Django anyway; not a site URL question
        scheme = request.scheme or "http"
        key = (site_url, scheme, str(seen))
        if key in self._good:
            return
        site = urlsplit(site_url)
        if not site.netloc:
            return
        expected = _host_port(site.scheme, site.netloc)
        actual = _host_port(scheme, str(seen))
        if actual == expected:
            if len(self._good) < self.KNOWN_GOOD:
                self._good.add(key)
            return
        with self._lock:
            if self.warned:
                return
            self.warned = True
        logger.warning(
            "SITE URL MISMATCH: a request arrived for %s://%s but LEB_SITE_URL is %s. "
            "Payment return URLs, webhooks, receipt links and the CSP use LEB_SITE_URL; "
            "set it to the address visitors use. (Logged once per process.)",
            request.scheme,
            seen,
            settings.SITE_URL,
        )


host_mismatch = HostMismatchWarning()


def request_origin(request: HttpRequest) -> str:
    host = _checked_host(request)
    return f"{request.scheme}://{host}" if host is not None else ""


def exempt_prefixes() -> tuple[str, ...]:
    """Paths served by third-party pages that cannot meet the policy (the
    interactive API docs inject inline styles); settings.CSP_EXEMPT_PATH_PREFIXES."""
    return tuple(getattr(settings, "CSP_EXEMPT_PATH_PREFIXES", ("/api/docs",)))


_NONCE = "\x00nonce\x00"


def content_security_policy(nonce: str, request_origin: str = "") -> str:
    hosts = getattr(settings, "PAYMENT_FORM_ACTION_HOSTS", ()) or ()
    before, after = _policy_around_nonce(
        str(getattr(settings, "SITE_URL", "")),
        hosts if isinstance(hosts, str) else tuple(hosts),
        request_origin,
    )
    return before + nonce + after


@functools.lru_cache(maxsize=64)
def _policy_around_nonce(
    site_url: str, hosts: str | tuple[str, ...], request_origin: str
) -> tuple[str, str]:
    """The policy's text before and after the nonce, for these settings and
    this origin (the key: the function reads the same settings)."""
    before, _nonce, after = _build_policy(_NONCE, request_origin).partition(_NONCE)
    return before, after


def _build_policy(nonce: str, request_origin: str) -> str:
    # A form posted here may be answered with a redirect to SITE_URL (payment
    # returns), which form-action also governs: allow it when it is not 'self'.
    site = site_origin()
    extra = [site] if site and site != request_origin else []
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
        "form-action": ["'self'", *extra, *form_action_hosts()],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Asked once: the host check costs more than the rest of this.
        host = _checked_host(request)
        host_mismatch.observe(request, host)
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if not request.path.startswith(exempt_prefixes()):
            origin = f"{request.scheme}://{host}" if host is not None else ""
            response.headers.setdefault(
                "Content-Security-Policy", content_security_policy(nonce, origin)
            )
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


class BusyDatabaseMiddleware:
    """A request that waited past the database's lock timeout for a row
    another transaction held (leb.common.transactions.database_busy) gets a
    translated "nothing was changed, try again" page with 503 and
    Retry-After, not a 500. Its transaction has already rolled back whole.
    The APIs answer the same as problem+json (leb.common.problems)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        from django.shortcuts import render

        from leb.common.transactions import database_busy

        if not database_busy(exc):
            return None
        logging.getLogger(__name__).warning(
            "database busy on %s %s: %s", request.method, request.path, exc
        )
        again = request.get_full_path() if request.method == "GET" else request.path
        response = render(request, "portal/busy.html", {"again": again}, status=503)
        response["Retry-After"] = "5"
        return response
