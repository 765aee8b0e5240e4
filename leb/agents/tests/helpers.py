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
