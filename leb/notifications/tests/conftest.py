"""Fixtures for notification tests: a real local SMTP server, a real local
HTTP server for webhooks, SMS kept in leb.sms.outbox."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import leb.sms


@pytest.fixture(autouse=True)
def _sms_outbox(settings: Any) -> Iterator[None]:
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    leb.sms.outbox.clear()
    yield
    leb.sms.outbox.clear()


@dataclass
class Received:
    to: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(make_header(decode_header(self.message["Subject"])))

    @property
    def body(self) -> str:
        payload = self.message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode(self.message.get_content_charset() or "utf-8")


@dataclass
class SmtpInbox:
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            Received(list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpInbox]:
    """A real SMTP server on 127.0.0.1 (free port) behind Django's SMTP backend."""
    inbox = SmtpInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        yield inbox
    finally:
        controller.stop()


@dataclass
class HookRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HookServer:
    url: str
    requests: list[HookRequest]
    status: list[int]


@pytest.fixture
def hook_server(settings: Any) -> Iterator[HookServer]:
    """A real HTTP server on 127.0.0.1 recording each POST; answers with the
    next status in `status` (200 when empty)."""
    received: list[HookRequest] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(
                HookRequest(self.path, dict(self.headers.items()), self.rfile.read(length))
            )
            self.send_response(statuses.pop(0) if statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = True
    try:
        yield HookServer(f"http://127.0.0.1:{server.server_address[1]}/hook", received, statuses)
    finally:
        server.shutdown()
        server.server_close()
