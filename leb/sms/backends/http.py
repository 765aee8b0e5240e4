"""A generic SMS gateway: one JSON POST per message, authenticated with a
bearer token.

    POST settings.SMS_HTTP_URL
    Authorization: Bearer settings.SMS_HTTP_TOKEN
    {"to": "+85291234567", "text": "...", "sender": settings.SMS_SENDER}

Any 2xx answer counts as accepted. Errors never include the token or the
message text (it may hold a one-time code).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from leb.sms import SmsError, SmsMessage

from .base import BaseSmsBackend


@dataclass(frozen=True)
class HttpRequest:
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float


# A transport sends a request and returns the HTTP status; it raises OSError
# (URLError, timeouts) when no answer came. Tests inject their own.
Transport = Callable[[HttpRequest], int]


def urllib_transport(request: HttpRequest) -> int:
    req = urllib.request.Request(  # noqa: S310 - the scheme is checked in SmsBackend
        request.url, data=request.body, headers=request.headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=request.timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class SmsBackend(BaseSmsBackend):
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        sender: str | None = None,
        transport: Transport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url if url is not None else getattr(settings, "SMS_HTTP_URL", "")
        self.token = token if token is not None else getattr(settings, "SMS_HTTP_TOKEN", "")
        self.timeout = float(
            timeout if timeout is not None else getattr(settings, "SMS_HTTP_TIMEOUT", 10)
        )
        self.sender = sender if sender is not None else getattr(settings, "SMS_SENDER", "")
        self.transport = transport or urllib_transport

    def send(self, message: SmsMessage) -> None:
        if urlsplit(self.url).scheme not in ("https", "http"):
            raise SmsError("SMS_HTTP_URL is not set to an http(s) URL")
        if not self.token:
            raise SmsError("SMS_HTTP_TOKEN is not set")
        payload: dict[str, str] = {"to": message.to, "text": message.text}
        if self.sender:
            payload["sender"] = self.sender
        request = HttpRequest(
            url=self.url,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps(payload).encode(),
            timeout=self.timeout,
        )
        try:
            status = self.transport(request)
        except (OSError, ValueError) as exc:
            # TimeoutError and URLError are OSErrors.
            raise SmsError(f"SMS gateway unreachable: {type(exc).__name__}") from exc
        if not 200 <= status < 300:
            raise SmsError(f"SMS gateway refused the message: HTTP {status}")
