"""Payments test helpers: a frozen clock, an unpaid order, and a webhook
transport that posts through the Django test client instead of the network."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from leb.common import clock


@pytest.fixture(autouse=True)
def frozen_clock(now: datetime) -> Iterator[None]:
    with clock.frozen(now):
        yield


@pytest.fixture
def make_order(make_line: Any, hkd_plan: Any, now: datetime) -> Callable[..., Any]:
    from leb.topups.actions import do_create_order

    counter = iter(range(1, 10_000))

    def factory(**kwargs: Any) -> Any:
        customer = kwargs.pop("customer", None)
        line = kwargs.pop("line", None) or make_line(owner=customer)
        return do_create_order(
            line=line,
            channel="web",
            plan=hkd_plan,
            customer=customer,
            idempotency_key=f"pay-test:{next(counter)}:{line.pk}",
            now=now,
        )

    return factory


class ClientTransport:
    """Delivers webhooks to this process through a test client; records answers."""

    def __init__(self) -> None:
        self.responses: list[Any] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        path = url.removeprefix(settings.SITE_URL.rstrip("/"))
        extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = Client().post(
            path, data=body, content_type=headers["Content-Type"], headers=extra
        )
        self.responses.append(response)
        return int(response.status_code)


@pytest.fixture
def transport() -> Iterator[ClientTransport]:
    from leb.payments.tasks import use_transport

    client_transport = ClientTransport()
    with use_transport(client_transport):
        yield client_transport
