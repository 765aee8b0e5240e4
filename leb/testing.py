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
