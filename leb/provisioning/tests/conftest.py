"""Provisioning test helpers: a frozen clock, the simulator switched on,
lines stocked at the simulated SM-DP+, and notification delivery through the
test client instead of the network."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from stdnum.iso7064 import mod_97_10

from leb.common import clock


def make_eid(n: int) -> str:
    body = f"8904903200{n:020d}"
    return body + mod_97_10.calc_check_digits(body)


EID = make_eid(1)
OTHER_EID = make_eid(2)


@pytest.fixture(autouse=True)
def frozen_clock(now: datetime) -> Iterator[None]:
    with clock.frozen(now):
        yield


@pytest.fixture(autouse=True)
def simulator_on(settings: Any) -> None:
    settings.SMDP_SIMULATOR = True
    settings.SMDP_URL = ""
    settings.SMDP_NOTIFICATION_SECRET = "s" * 40
    settings.SMDP_RETRIES = 0
    settings.SMDP_RELEASE_FLAG = True


@pytest.fixture
def stocked_line(make_line: Any, now: datetime) -> Callable[..., Any]:
    """A line whose profile is in leb and in the simulator's stock."""
    from leb.provisioning import simulator
    from leb.provisioning.actions import do_add_profile

    def factory(**kwargs: Any) -> Any:
        line = make_line(**kwargs)
        simulator.stock([line.iccid], now)
        do_add_profile(line, now=now)
        return line

    return factory


class ClientTransport:
    def __init__(self) -> None:
        self.responses: list[Any] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        path = url.removeprefix(settings.SITE_URL.rstrip("/"))
        extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = Client().post(path, data=body, content_type="application/json", headers=extra)
        self.responses.append(response)
        return int(response.status_code)


@pytest.fixture
def transport() -> Iterator[ClientTransport]:
    from leb.provisioning.tasks import use_transport

    client_transport = ClientTransport()
    with use_transport(client_transport):
        yield client_transport


def pending_notifications() -> list[Any]:
    from django_tasks_db.models import DBTaskResult

    return list(
        DBTaskResult.objects.filter(
            task_path="leb.provisioning.tasks.deliver_progress", status="READY"
        ).order_by("enqueued_at", "pk")
    )


def deliver_pending() -> list[str]:
    """Run every queued progress notification once, like a worker would."""
    from leb.provisioning.tasks import deliver_progress

    results = []
    for row in pending_notifications():
        row.status = "SUCCESSFUL"
        row.save(update_fields=["status"])
        results.append(deliver_progress.call(*row.args_kwargs["args"]))
    return results
