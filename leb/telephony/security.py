"""Who may call the phone webhooks.

Twilio (and TeXML-compatible carriers) sign every webhook: X-Twilio-Signature
is HMAC-SHA1(auth token, full URL + sorted POST parameters). leb checks it
with Twilio's own RequestValidator against the public URL (LEB_PHONE_PUBLIC_URL,
else LEB_SITE_URL, plus the path and query) and against the URL as the request
reached leb, so a proxy that rewrites neither, or one that forwards the Host
and X-Forwarded-Proto headers, both work. Without an auth token every request
is refused.

The USSD gateway authenticates with HTTP Basic: the password is LEB_USSD_SECRET
(the user name is not checked), optionally from listed addresses only (the
client address behind LEB_NUM_PROXIES trusted proxies, like every limit).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from twilio.request_validator import RequestValidator

from leb.common.ratelimit import client_ip


def public_base_url() -> str:
    return (getattr(settings, "PHONE_PUBLIC_URL", "") or settings.SITE_URL).rstrip("/")


def public_url(request: HttpRequest) -> str:
    """The URL Twilio requested, as configured in its console."""
    return public_base_url() + request.get_full_path()


def twilio_request_is_signed(request: HttpRequest) -> bool:
    token = getattr(settings, "TWILIO_AUTH_TOKEN", "") or ""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    validator = RequestValidator(token)
    candidates = [public_url(request)]
    with contextlib.suppress(DisallowedHost):  # a foreign Host: only the public URL counts
        candidates.append(request.build_absolute_uri())
    return any(validator.validate(url, request.POST, signature) for url in candidates)


def ussd_request_is_authentic(request: HttpRequest) -> bool:
    secret = getattr(settings, "USSD_SECRET", "") or ""
    if not secret:
        return False
    allowed = getattr(settings, "USSD_ALLOWED_IPS", []) or []
    if allowed and client_ip(request) not in allowed:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _space, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _user, colon, password = decoded.partition(":")
    return bool(colon) and hmac.compare_digest(password.encode(), secret.encode())
