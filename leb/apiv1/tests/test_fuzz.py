"""Fuzzing /api/v1 with schemathesis: every operation of the published
OpenAPI document (/api/v1/openapi.json), generated valid and invalid input,
every built-in check. Twice: as a guest (with random or no credentials) and
signed in with a personal token of a subscriber who owns lines, a paid
top-up with its receipt and an open order, so generated input reaches the
handlers.

Nothing is excluded. Throttles are off (their limits have their own tests) so
that the examples reach the handlers instead of stopping at 429."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from leb.common.tests import fuzzing

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

guest_schema = fuzzing.load("/api/v1/openapi.json")
signed_in_schema = fuzzing.load("/api/v1/openapi.json")


@dataclass
class Subscriber:
    token: str = ""


SUBSCRIBER = Subscriber()
SENT_WITH_TOKEN: list[int] = []


@signed_in_schema.auth(refresh_interval=None)
class PersonalToken:
    """`Authorization: Bearer leb_…` of the subscriber of the running test."""

    def get(self, case: Any, ctx: Any) -> str:
        return SUBSCRIBER.token

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(autouse=True)
def _one_connection() -> Iterator[None]:
    with fuzzing.one_connection():
        yield


@pytest.fixture(autouse=True)
def _no_throttles(settings: Any) -> None:
    settings.API_LINE_CHECK_RATE = ""
    settings.VOUCHER_API_RATE = ""
    settings.API_AGENT_VERIFY_RATE = ""
    settings.API_AGENT_LIST_RATE = ""


@pytest.fixture
def subscriber(owner: Any, make_line: Any, hkd_plan: Any, now: datetime) -> Iterator[Subscriber]:
    """A subscriber like the demo one: lines, a paid top-up with its receipt,
    an open order, and a personal token."""
    from leb.api.actions import do_create_personal_token
    from leb.testing import topup
    from leb.topups.actions import do_create_order

    line = make_line(owner=owner)
    make_line(owner=owner)
    topup(line, hkd_plan, now=now)
    do_create_order(
        line=line,
        channel="web",
        plan=hkd_plan,
        idempotency_key="fuzz:open",
        customer=owner,
        now=now,
    )
    _token, SUBSCRIBER.token = do_create_personal_token(owner, "fuzz")
    yield SUBSCRIBER
    SUBSCRIBER.token = ""


@guest_schema.parametrize()
@fuzzing.FUZZ_SETTINGS
def test_api_v1_as_a_guest(case: Any, hkd_plan: Any) -> None:
    case.call_and_validate()


@signed_in_schema.parametrize()
@fuzzing.FUZZ_SETTINGS
def test_api_v1_signed_in(case: Any, subscriber: Subscriber) -> None:
    response = case.call_and_validate()
    # The token is sent right: a request that carries it is never turned
    # away at the door. (Some coverage cases drop or garble the header on
    # purpose; those must be a 401, which the checks above verify.)
    if response.request.headers.get("Authorization") == f"Bearer {subscriber.token}":
        SENT_WITH_TOKEN.append(response.status_code)
        assert response.status_code != 401, response.content
