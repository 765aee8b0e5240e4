"""User webhooks: URL rules, request signing and the pinned connection.

A webhook URL is resolved once, every address it resolves to is checked, and
the request is then sent to exactly the address that was checked: the
connection is opened to that IP while the request keeps the URL's Host
header, and TLS uses the host name for SNI and for the certificate check. A
DNS answer that changes between the check and the connection (DNS
rebinding) cannot make leb post to another address. Redirects are never
followed, environment proxies are not used.

Each request carries `Leb-Signature: t=<unix time>,v1=<hex>` where hex is
HMAC-SHA256(secret, f"{t}.{body}"). The secret is never stored: it is derived
from SECRET_KEY, the user id and a rotation counter kept on the preference.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter

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


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook URL that passed the rules, and the one address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def resolve_webhook_url(url: str) -> WebhookTarget:
    """Check the URL and its addresses; return the target to connect to, or
    raise a translated ValidationError. Every address the host resolves to
    must pass (a host with one private address is refused), and the first one
    is the address the request is sent to."""
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
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        results = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ValidationError(
            _("The webhook host could not be found."), code="unresolvable"
        ) from exc
    addresses = [str(result[4][0]) for result in results]
    if not addresses or (not _allow_private() and any(_refused(a) for a in addresses)):
        raise ValidationError(
            _("The webhook URL must point to a public internet address."), code="private"
        )
    return WebhookTarget(url.strip(), parts.scheme, host, port, addresses[0])


def check_webhook_url(url: str) -> str:
    """Return the URL if leb may POST to it, else raise a translated
    ValidationError. Checked when saved and again before every send."""
    return resolve_webhook_url(url).url


class PinnedAdapter(HTTPAdapter):
    """A transport adapter that connects to one checked IP address whatever
    the URL's host resolves to now. urllib3 opens the socket to the IP; the
    host name is kept for the Host header (the URL is unchanged), for SNI
    (`server_hostname`) and for certificate verification (`assert_hostname`),
    so certificates are still verified against the name the user gave."""

    def __init__(self, target: WebhookTarget) -> None:
        self.target = target
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_params["host"] = self.target.address.split("%", 1)[0]
        host_params["port"] = self.target.port
        if self.target.scheme == "https":
            pool_kwargs["server_hostname"] = self.target.host
            pool_kwargs["assert_hostname"] = self.target.host
        return host_params, pool_kwargs


def post_to_webhook(
    target: WebhookTarget,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    verify: bool | str = True,
) -> requests.Response:
    """POST `body` to the checked target, connecting only to its checked
    address. No redirects, no proxies from the environment, no retries (the
    outbox retries). `verify` is requests' own: True (the CA bundle) or a CA
    file."""
    # urllib3 would name the IP in Host: send the URL's own host and port.
    sent_headers = {**headers, "Host": urlsplit(target.url).netloc}
    with requests.Session() as session:
        session.trust_env = False  # no HTTP(S)_PROXY, .netrc or REQUESTS_CA_BUNDLE
        session.mount(f"{target.scheme}://", PinnedAdapter(target))
        return session.post(
            target.url,
            data=body,
            headers=sent_headers,
            timeout=timeout,
            allow_redirects=False,
            verify=verify,
        )
