"""Request signing for the agent API.

A key's secret is never stored: it is HMAC-SHA256(pepper, "<key id>:<salt>"),
so the server can recompute it to check a signature while a copy of the
database alone reveals nothing. The pepper is AGENTS_KEY_PEPPER (or, for
local use, one derived from SECRET_KEY); changing it invalidates every key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from django.conf import settings

KEY_ID_PREFIX = "lak_"
HEADER_KEY_ID = "Leb-Key-Id"
HEADER_TIMESTAMP = "Leb-Timestamp"
HEADER_NONCE = "Leb-Nonce"
HEADER_SIGNATURE = "Leb-Signature"


def _pepper() -> bytes:
    configured = getattr(settings, "AGENTS_KEY_PEPPER", "")
    if configured:
        return configured.encode()
    return hashlib.sha256(f"leb.agents.keys:{settings.SECRET_KEY}".encode()).digest()


def new_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(8)


def new_salt() -> str:
    return secrets.token_hex(16)


def derive_secret(key_id: str, salt: str) -> str:
    digest = hmac.new(_pepper(), f"{key_id}:{salt}".encode(), hashlib.sha256).digest()
    return "las_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """method, path with query string, timestamp, nonce and the body's SHA-256
    (hex), one per line."""
    return "\n".join([method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = string_to_sign(method, path, timestamp, nonce, body)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def signed_headers(
    key_id: str, secret: str, method: str, path: str, body: bytes, timestamp: int, nonce: str
) -> dict[str, str]:
    """The four headers a client sends (used by tests and the docs)."""
    ts = str(timestamp)
    return {
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: ts,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign(secret, method, path, ts, nonce, body),
    }
