"""Webhooks go to the address that was checked: a name that resolves to a
public address when checked and to loopback a moment later (DNS rebinding)
never makes leb connect to loopback; TLS is still verified against the host
name; redirects are not followed."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.util.connection

from leb.notifications.actions import do_save_notification_preferences, notify
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Notification, Status
from leb.notifications.webhooks import (
    PinnedAdapter,
    WebhookTarget,
    post_to_webhook,
    resolve_webhook_url,
)
from leb.testing import HookServer

from .helpers import make_user, receipt_context

PUBLIC = "93.184.215.14"
NAME = "hooks.example.test"
_real_getaddrinfo = socket.getaddrinfo


class Resolver:
    """DNS for NAME: the queued answers first, then `default` for ever."""

    def __init__(self, default: str) -> None:
        self.default = default
        self.queue: list[str] = []
        self.calls = 0

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        self.calls += 1
        address = self.queue.pop(0) if self.queue else self.default
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    answer = Resolver(PUBLIC)
    monkeypatch.setattr(socket, "getaddrinfo", answer)
    return answer


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address urllib3 opens a socket to; the public test address
    refuses at once (there is no internet here), everything else is real."""
    opened: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        opened.append((address[0], int(address[1])))
        if address[0] == PUBLIC:
            raise ConnectionRefusedError("test: the public address refuses")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return opened


@pytest.mark.django_db
def test_a_name_rebound_to_loopback_after_the_check_is_never_reached(
    settings: Any,
    hook_server: HookServer,
    resolver: Resolver,
    connections: list[tuple[str, int]],
    now: datetime,
) -> None:
    # given a webhook on a name that resolved to a public address when saved,
    # and a receiver listening on loopback at the same port
    settings.DEBUG = True  # plain http, but private addresses refused
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False
    port = int(hook_server.url.rsplit(":", 1)[1].split("/", 1)[0])
    url = f"http://{NAME}:{port}/hook"
    user = make_user()
    do_save_notification_preferences(user, email_enabled=False, webhook_url=url)
    notify(kind="topup_succeeded", context=receipt_context(now), dedupe_key="w", user=user, now=now)

    # when the name answers public once more (the send-time check), then loopback
    resolver.default = "127.0.0.1"
    resolver.queue = [PUBLIC]
    result = deliver_due_notifications(now)

    # then leb connected to the checked public address only; loopback got nothing
    assert connections == [(PUBLIC, port)]
    assert hook_server.requests == []
    assert result.retried == 1
    assert Notification.objects.get().status == Status.PENDING


@pytest.mark.django_db
def test_the_checked_address_is_what_receives_it(
    hook_server: HookServer, resolver: Resolver, connections: list[tuple[str, int]], now: datetime
) -> None:
    # given a name that resolves to the local receiver (private allowed in tests)
    resolver.default = "127.0.0.1"
    port = int(hook_server.url.rsplit(":", 1)[1].split("/", 1)[0])
    user = make_user()
    do_save_notification_preferences(
        user, email_enabled=False, webhook_url=f"http://{NAME}:{port}/hook"
    )
    notify(kind="topup_succeeded", context=receipt_context(now), dedupe_key="w", user=user, now=now)

    # when
    result = deliver_due_notifications(now)

    # then it arrived, named by its host, resolved once at send time
    assert result.sent == 1
    (request,) = hook_server.requests
    assert request.headers["Host"] == f"{NAME}:{port}"
    assert connections == [("127.0.0.1", port)]


def test_the_adapter_pins_the_ip_and_keeps_the_name_for_tls() -> None:
    # given a checked https target
    target = WebhookTarget(f"https://{NAME}/leb", "https", NAME, 443, PUBLIC)
    prepared = requests.Request("POST", target.url, data=b"{}").prepare()

    # when urllib3's pool is chosen for the request
    pool = PinnedAdapter(target).get_connection_with_tls_context(prepared, True)

    # then it connects to the IP, with the name for SNI and the certificate check
    assert (pool.host, pool.port) == (PUBLIC, 443)
    assert pool.conn_kw["server_hostname"] == NAME
    assert pool.assert_hostname == NAME  # type: ignore[attr-defined]


# --- TLS against a local HTTPS server --------------------------------------------------


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(  # noqa: S603
        [  # noqa: S607
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class TlsServer:
    def __init__(self, cert: Path, key: Path, status: int = 200, location: str = "") -> None:
        self.requests: list[dict[str, str]] = []
        self.server_names: list[str | None] = []
        received, status_code = self.requests, status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(dict(self.headers.items()))
                self.send_response(status_code)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TlsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def certificates(tmp_path: Path) -> Iterator[dict[str, tuple[Path, Path]]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    yield {name: _certificate(tmp_path, name) for name in (NAME, "other.example.test")}


def test_tls_is_verified_against_the_host_name(
    settings: Any, resolver: Resolver, certificates: dict[str, tuple[Path, Path]]
) -> None:
    # given an https receiver on loopback with a certificate for NAME
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = True
    resolver.default = "127.0.0.1"
    cert, key = certificates[NAME]
    with TlsServer(cert, key) as server:
        target = resolve_webhook_url(f"https://{NAME}:{server.port}/hook")

        # when leb posts, trusting that certificate
        response = post_to_webhook(target, b"{}", {}, timeout=5, verify=str(cert))

        # then TLS named the host (SNI) and the request its Host
        assert response.status_code == 200
        assert server.server_names == [NAME]
        assert server.requests[0]["Host"] == f"{NAME}:{server.port}"

        # and without trusting it, the certificate is refused
        with pytest.raises(requests.exceptions.SSLError):
            post_to_webhook(target, b"{}", {}, timeout=5)


def test_a_certificate_for_another_name_is_refused(
    settings: Any, resolver: Resolver, certificates: dict[str, tuple[Path, Path]]
) -> None:
    # given a receiver at NAME's address whose certificate names another host
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = True
    resolver.default = "127.0.0.1"
    cert, key = certificates["other.example.test"]
    with TlsServer(cert, key) as server:
        target = resolve_webhook_url(f"https://{NAME}:{server.port}/hook")

        # when / then: the IP connection is not mistaken for the name
        with pytest.raises(requests.exceptions.SSLError):
            post_to_webhook(target, b"{}", {}, timeout=5, verify=str(cert))
        assert server.requests == []


def test_redirects_are_not_followed(
    settings: Any,
    hook_server: HookServer,
    resolver: Resolver,
    certificates: dict[str, tuple[Path, Path]],
) -> None:
    # given a receiver that redirects to a loopback address
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = True
    resolver.default = "127.0.0.1"
    cert, key = certificates[NAME]
    with TlsServer(cert, key, status=307, location=hook_server.url) as server:
        target = resolve_webhook_url(f"https://{NAME}:{server.port}/hook")

        # when
        response = post_to_webhook(target, b"{}", {}, timeout=5, verify=str(cert))

    # then the redirect is the answer (a failed delivery); its target got nothing
    assert response.status_code == 307
    assert hook_server.requests == []


@pytest.mark.django_db
def test_a_redirect_is_a_failed_delivery(
    hook_server: HookServer, now: datetime, settings: Any
) -> None:
    # given a receiver answering 302
    hook_server.status.append(302)
    user = make_user()
    do_save_notification_preferences(user, email_enabled=False, webhook_url=hook_server.url)
    notify(
        kind="topup_succeeded",
        context=receipt_context(datetime(2026, 12, 28, tzinfo=UTC)),
        dedupe_key="w",
        user=user,
        now=now,
    )

    # when
    result = deliver_due_notifications(now)

    # then it is retried later, not followed
    assert result.retried == 1
    assert len(hook_server.requests) == 1
    assert "302" in Notification.objects.get().last_error
