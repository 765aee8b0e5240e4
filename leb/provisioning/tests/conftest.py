"""Provisioning fixtures: a frozen clock, the simulator switched on, lines
stocked at the simulated SM-DP+, and notification delivery through the test
client instead of the network."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from leb.common import clock

from .helpers import ClientTransport


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


@pytest.fixture
def transport() -> Iterator[ClientTransport]:
    from leb.provisioning.tasks import use_transport

    client_transport = ClientTransport()
    with use_transport(client_transport):
        yield client_transport
