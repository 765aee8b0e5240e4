"""Who is calling the agent API: a signed request with an agent's key.

Every check that can refuse runs before anything is written; the nonce is
recorded only once the signature is proven, so a refused request (401)
leaves no trace.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import APIKeyHeader
from ninja.throttling import SimpleRateThrottle

from leb.common import clock
from leb.common.problems import Problem

from . import signing
from .actions import do_record_nonce, key_is_usable
from .models import AgentApiKey, AgentStatus

NONCE_RE = re.compile(r"[A-Za-z0-9_\-]{16,64}")


def request_targets(request: HttpRequest) -> list[str]:
    """The path with its query string that the client may have signed: as it
    was sent, where the WSGI server passes the raw request line on (gunicorn
    and werkzeug set RAW_URI), and as Django re-encodes it. They differ when
    the client percent-encodes a character Django does not (`%2C` for `,`),
    or sends one in the query that Django would encode."""
    canonical = request.get_full_path()
    raw = str(request.META.get("RAW_URI") or request.META.get("REQUEST_URI") or "")
    if not raw:
        return [canonical]
    path = urlsplit(raw).path or "/"
    query = str(request.META.get("QUERY_STRING", ""))
    as_sent = path + (f"?{query}" if query else "")
    return [as_sent] if as_sent == canonical else [as_sent, canonical]


def _unauthorised(code: str, detail: str) -> Problem:
    return Problem(401, code, detail, headers={"WWW-Authenticate": 'LebSignature realm="agent"'})


class SignatureAuth(APIKeyHeader):
    """Returns the key, with its agent loaded. Declared in OpenAPI as the
    Leb-Signature header; the other three headers are described in the docs."""

    param_name = signing.HEADER_SIGNATURE

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return None  # unused: __call__ does the whole check

    def __call__(self, request: HttpRequest) -> AgentApiKey:
        key_id = request.headers.get(signing.HEADER_KEY_ID, "").strip()
        timestamp = request.headers.get(signing.HEADER_TIMESTAMP, "").strip()
        nonce = request.headers.get(signing.HEADER_NONCE, "").strip()
        signature = request.headers.get(signing.HEADER_SIGNATURE, "").strip()
        if not (key_id and timestamp and nonce and signature):
            raise _unauthorised(
                "signature_missing",
                _("Sign the request: send Leb-Key-Id, Leb-Timestamp, Leb-Nonce and Leb-Signature."),
            )
        now = clock.now()
        window = settings.AGENTS_SIGNATURE_WINDOW_SECONDS
        if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > window:
            raise _unauthorised(
                "signature_expired",
                _("The request's timestamp is more than %(seconds)d seconds from our clock.")
                % {"seconds": window},
            )
        if not NONCE_RE.fullmatch(nonce):
            raise _unauthorised(
                "nonce_invalid",
                _("Leb-Nonce must be 16 to 64 letters, digits, '-' or '_'."),
            )
        key = AgentApiKey.objects.select_related("agent").filter(key_id=key_id).first()
        if key is None:
            raise _unauthorised("key_unknown", _("This API key is not known."))
        if not key_is_usable(key, now):
            raise _unauthorised("key_revoked", _("This API key was revoked or has expired."))
        secret = signing.derive_secret(key.key_id, key.salt)
        signed = any(
            signing.signature_matches(
                signing.sign(secret, request.method or "", target, timestamp, nonce, request.body),
                signature,
            )
            for target in request_targets(request)
        )
        if not signed:
            raise _unauthorised(
                "signature_invalid",
                _("The signature does not match the request. See the signing guide."),
            )
        if key.agent.status != AgentStatus.ACTIVE:
            raise Problem(
                403, "agent_suspended", _("This agent account is suspended: the API is closed.")
            )
        if not do_record_nonce(key, nonce, now):
            raise _unauthorised(
                "nonce_replayed", _("This request was already received (the nonce was used).")
            )
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            AgentApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        request.agent_key = key  # type: ignore[attr-defined]
        return key


signature_auth = SignatureAuth()


class KeyThrottle(SimpleRateThrottle):
    """AGENTS_API_RATE requests per key (e.g. "120/m"; empty: no limit)."""

    def __init__(self) -> None:
        super().__init__(rate="120/m")

    def allow_request(self, request: HttpRequest) -> bool:
        rate = str(getattr(settings, "AGENTS_API_RATE", "") or "")
        if not rate:
            return True
        self.rate = rate
        self.num_requests, self.duration = self.parse_rate(rate)
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str | None:
        key: Any = getattr(request, "agent_key", None)
        if key is None:
            return None
        return f"leb:agents:throttle:{key.key_id}"


key_throttle = KeyThrottle()
