"""Test helpers shared by the tests of several apps: numbers, a top-up the way
a channel makes one, thread races, local servers, API assertions and
delivering the notification outbox.

Imported by tests and conftests only, never by application code. Fixtures
live in the conftests; helpers used by one app's tests only live in that
app's `tests/helpers.py`. Django is imported inside the functions, so the
root conftest can import this module before Django is set up."""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stdnum import luhn

_serial = itertools.count(1)


def next_serial() -> int:
    """A number no other caller in this test run has had."""
    return next(_serial)


def make_iccid(n: int) -> str:
    body = f"8985200{n:011d}"
    return body + luhn.calc_check_digit(body)


def make_hk_msisdn(n: int) -> str:
    return f"+85294{n % 1_000_000:06d}"


def topup(
    line: Any,
    plan: Any = None,
    *,
    amount: int | None = None,
    now: datetime,
    key: str = "",
    channel: str = "web",
    promo_code: str = "",
) -> Any:
    """Create, pay and fulfil an order the way a channel does."""
    from leb.topups.actions import do_create_order, do_fulfil_order, do_mark_paid

    order = do_create_order(
        line=line,
        channel=channel,
        plan=plan,
        amount=amount,
        promo_code=promo_code,
        idempotency_key=key or f"test:{next_serial()}",
        now=now,
    )
    order = do_mark_paid(
        order,
        amount=order.price,
        currency=order.currency,
        provider="sandbox",
        reference=f"ref-{order.pk}",
        now=now,
    )
    return do_fulfil_order(order, now=now)


def race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(i) in n threads released at the same moment, each on its own
    database connection; return each result or the exception it raised."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def race_all(fns: list[Callable[[], Any]]) -> list[Any]:
    """race() for a list of different callables."""
    return race(len(fns), lambda i: fns[i]())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class HookRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HookServer:
    """What the `hook_server` fixture gives: its URL, the requests it got and
    the statuses it will answer with next (200 when empty)."""

    url: str
    requests: list[HookRequest]
    status: list[int]


@dataclass
class LoadedDemo:
    """What the `demo` fixture gives: the demo's summary and the moment it was
    loaded at."""

    summary: Any  # leb.ops.demo.DemoSummary
    now: datetime


def bearer(token: str) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem document of this status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "https://leb.example/problems/" + code.replace("_", "-")
    assert body["title"] and body["detail"]
    return body


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run the block in a transaction that is rolled back at its end, marked
    as the test's own like the one a test case wraps around each test, so
    actions that must run outside a transaction (they call providers) still
    run inside it: for a test that needs the same starting state twice."""
    from django.db import transaction

    block = transaction.atomic()
    block._from_testcase = True  # type: ignore[attr-defined]
    with block:
        yield
        transaction.set_rollback(True)


# --- The notification outbox ---------------------------------------------------------


def deliver_outbox(now: datetime | None = None) -> Any:
    """What the outbox's worker does: send every message due now (a
    DeliveryResult)."""
    from leb.notifications.delivery import deliver_due_notifications

    return deliver_due_notifications(now)


def delivered_mail() -> list[Any]:
    """django.core.mail.outbox once the due messages are delivered."""
    from django.core import mail

    deliver_outbox()
    return list(mail.outbox)


def delivered_texts() -> list[Any]:
    """leb.sms.outbox once the due messages are delivered."""
    import leb.sms

    deliver_outbox()
    return list(leb.sms.outbox)


# --- Faults at the transport level ----------------------------------------------------


@dataclass
class Answer:
    """What the fault server does with one request: wait `delay` seconds, then
    answer `status` with `body`, or close the connection without a word
    (`drop`)."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    delay: float = 0.0
    drop: bool = False
    headers: dict[str, str] | None = None

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class FaultRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FaultServer:
    """A real HTTP server on 127.0.0.1 that plays a provider having a bad day.

    `answer(path_prefix, *answers)` queues answers for requests whose path
    starts with the prefix (the longest prefix wins); each request takes the
    next one, and the last one repeats. A path with no answer gets a 404.
    `requests` records every request received, in order."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[FaultRequest] = []
        self._script: dict[str, list[Answer]] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        fault = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                answer = fault._take(self.command, self.path, dict(self.headers.items()), body)
                if answer.delay:
                    # Released at shutdown, so a stalled answer never outlives the test.
                    fault._released.wait(answer.delay)
                if answer.drop:
                    self.close_connection = True
                    return
                payload = answer.payload()
                try:
                    self.send_response(answer.status)
                    headers = {"Content-Type": "application/json", **(answer.headers or {})}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting: that was the point

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, prefix: str, *answers: Answer) -> None:
        with self._lock:
            self._script[prefix] = list(answers)

    def _take(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        with self._lock:
            self.requests.append(FaultRequest(method, path, headers, body))
            matches = [p for p in self._script if path.startswith(p)]
            if not matches:
                return Answer(404, {"error": "not found"})
            queue = self._script[max(matches, key=len)]
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def requests_to(self, prefix: str) -> list[FaultRequest]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()


def refused_url() -> str:
    """An address where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose connections never complete: it listens with a full
    backlog and never accepts, so a client's connect times out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    filling: list[socket.socket] = []
    try:
        while True:  # fill the accept queue until a connect stalls
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.settimeout(0.1)
            try:
                probe.connect(("127.0.0.1", port))
            except OSError:
                probe.close()
                break
            filling.append(probe)
        yield port
    finally:
        for probe in filling:
            probe.close()
        listener.close()


@contextmanager
def row_held(model: Any, pk: Any) -> Iterator[None]:
    """Another transaction, on its own connection, holds the row's lock
    (SELECT … FOR UPDATE) for the length of the block."""
    import threading

    from django.db import connections, transaction

    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                model.objects.select_for_update().get(pk=pk)
                held.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10), "the holder never got the lock"
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def short_lock_timeout(milliseconds: int = 300) -> None:
    """This connection waits at most `milliseconds` for a row lock (PostgreSQL),
    as LEB_DB_LOCK_TIMEOUT_MS sets for every connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = {int(milliseconds)}")
