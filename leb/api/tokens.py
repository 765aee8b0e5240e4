"""Personal token format and hashing: `leb_<prefix>_<secret>`.

The prefix finds the row; the HMAC of the whole token (keyed with
SECRET_KEY, or a fallback key during a key rotation) proves the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

SCHEME = "leb"
PREFIX_BYTES = 6  # 12 hex characters
SECRET_BYTES = 32


def _keys() -> list[str]:
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def hash_token(token: str, key: str | None = None) -> str:
    secret_key = key if key is not None else settings.SECRET_KEY
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def generate() -> tuple[str, str, str]:
    """(prefix, clear token, hash) of a new random token."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    # Hex keeps the token free of the "_" that separates its parts.
    token = f"{SCHEME}_{prefix}_{secrets.token_hex(SECRET_BYTES)}"
    return prefix, token, hash_token(token)


def split(token: str) -> str | None:
    """The prefix of a well-formed token, else None."""
    parts = token.strip().split("_")
    if len(parts) != 3 or parts[0] != SCHEME:
        return None
    prefix, secret = parts[1], parts[2]
    if len(prefix) != PREFIX_BYTES * 2 or len(secret) != SECRET_BYTES * 2:
        return None
    if not all(c in "0123456789abcdef" for c in prefix + secret):
        return None
    return prefix


def matches(token: str, stored_hash: str) -> bool:
    return any(hmac.compare_digest(hash_token(token, key), stored_hash) for key in _keys())
