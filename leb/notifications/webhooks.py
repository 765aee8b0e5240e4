"""User webhooks: URL rules and request signing.

Each request carries `Leb-Signature: t=<unix time>,v1=<hex>` where hex is
HMAC-SHA256(secret, f"{t}.{body}"). The secret is never stored: it is derived
from SECRET_KEY, the user id and a rotation counter kept on the preference.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

SIGNATURE_HEADER = "Leb-Signature"


def webhook_secret(user_id: int, version: int) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        f"leb.notifications.webhook:{user_id}:{version}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"whsec_{digest}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """The receiving side's check (also shown in docs/notifications.md)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(
        sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}"
    )


def _allow_private() -> bool:
    return bool(settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE)


def _refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def check_webhook_url(url: str) -> str:
    """Return the URL if leb may POST to it, else raise a translated
    ValidationError. Checked when saved and again before every send."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValidationError(_("Enter a valid URL."), code="invalid") from exc
    allow_http = settings.DEBUG or _allow_private()
    if parts.scheme != "https" and not (parts.scheme == "http" and allow_http):
        raise ValidationError(_("The webhook URL must start with https://."), code="scheme")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            _("The webhook URL must not contain a user name or password."), code="credentials"
        )
    host = parts.hostname
    if not host:
        raise ValidationError(_("Enter a valid URL."), code="invalid")
    try:
        results = socket.getaddrinfo(
            host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError) as exc:
        raise ValidationError(
            _("The webhook host could not be found."), code="unresolvable"
        ) from exc
    if not _allow_private() and (not results or any(_refused(str(r[4][0])) for r in results)):
        raise ValidationError(
            _("The webhook URL must point to a public internet address."), code="private"
        )
    return url.strip()
