"""Helpers for the agent tests: a client that signs its requests as an agent
would, and the problem-document check of the agent API."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from django.test import Client

from leb.agents import signing
from leb.common import clock

_nonce = itertools.count(1)


@dataclass
class SignedClient:
    """Signs every request as an agent client would."""

    client: Client
    key_id: str
    secret: str

    def request(
        self,
        method: str,
        path: str,
        data: Any = None,
        *,
        nonce: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        sign_body: bytes | None = None,
    ) -> Any:
        body = b"" if data is None else json.dumps(data).encode()
        signed = signing.signed_headers(
            self.key_id,
            self.secret,
            method,
            path,
            body if sign_body is None else sign_body,
            int(clock.now().timestamp()) if timestamp is None else timestamp,
            nonce or f"nonce-{next(_nonce):012d}",
        )
        extra = {**signed, **(headers or {})}
        return self.client.generic(
            method, path, body, content_type="application/json", headers=extra
        )

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, {} if data is None else data, **kwargs)


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"]
    return body


# --- Portal personas ------------------------------------------------------------------

PORTAL_PASSWORD = "portal pass phrase 42"


def add_member(agent: Any, username: str, role: str = "seller", *, device: bool = True) -> Any:
    """A user who is a member of `agent`, with a confirmed authenticator app."""
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from leb.agents.models import AgentMember

    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", PORTAL_PASSWORD
    )
    AgentMember.objects.create(user=user, agent=agent, role=role)
    if device:
        TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    return user


def verified_client(user: Any) -> Client:
    """Signed in, with a session that gave its authenticator code."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client
