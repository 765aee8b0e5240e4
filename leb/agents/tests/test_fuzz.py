"""Fuzzing /agent/v1 with schemathesis: every operation of its OpenAPI
document (/agent/v1/openapi.json), generated valid and invalid input, every
built-in check. Twice: unsigned (random or missing signature headers: every
answer must be a declared 401 problem), and signed with an agent's key
exactly as an agent's integration signs (`AgentSignature`), so generated
bodies, paths and queries reach the handlers.

Nothing is excluded. The per-key throttle is off (it has its own tests) so
that examples reach the handlers instead of stopping at 429."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from schemathesis.transport.wsgi import WSGI_TRANSPORT
from werkzeug.test import EnvironBuilder

from leb.agents import signing
from leb.agents.actions import NewKey
from leb.common import clock
from leb.common.tests import fuzzing

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

unsigned_schema = fuzzing.load("/agent/v1/openapi.json")
signed_schema = fuzzing.load("/agent/v1/openapi.json")

_nonces = itertools.count(1)


@dataclass
class Credentials:
    key_id: str = ""
    secret: str = ""


KEY = Credentials()


def wire_request(case: Any) -> tuple[str, bytes]:
    """The request target (path and query string) and the body bytes this
    case is sent with: what the test transport puts on the wire."""
    data = WSGI_TRANSPORT.serialize_case(case)
    builder = EnvironBuilder(
        path=data["path"],
        method=data["method"],
        query_string=data.get("query_string"),
        data=data.get("data"),
        json=data.get("json"),
        content_type=data["headers"].get("Content-Type"),
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    query = environ.get("QUERY_STRING", "")
    return environ["REQUEST_URI"] + (f"?{query}" if query else ""), body


@signed_schema.auth(refresh_interval=None)
class AgentSignature:
    """Signs each request like an agent's integration does (docs/agents.md):
    HMAC-SHA256 over the method, the path with its query string as sent, the
    timestamp, a fresh nonce and the SHA-256 of the body bytes sent."""

    def get(self, case: Any, ctx: Any) -> Credentials:
        return KEY

    def set(self, case: Any, data: Credentials, ctx: Any) -> None:
        target, body = wire_request(case)
        headers = signing.signed_headers(
            data.key_id,
            data.secret,
            case.method,
            target,
            body,
            int(clock.now().timestamp()),
            f"fuzz-nonce-{next(_nonces):012d}",
        )
        case.headers = {**(case.headers or {}), **headers}


@pytest.fixture(autouse=True)
def _one_connection() -> Iterator[None]:
    with fuzzing.one_connection():
        yield


@pytest.fixture(autouse=True)
def _no_throttle(settings: Any) -> None:
    settings.AGENTS_API_RATE = ""


@pytest.fixture
def signed_key(
    key: NewKey, make_line: Any, hkd_plan: Any, agent: Any, now: Any
) -> Iterator[Credentials]:
    """An active agent with float, a line it can top up and a sale on the books."""
    from leb.agents.actions import do_create_agent_topup

    line = make_line()
    make_line()
    do_create_agent_topup(
        agent,
        external_id="fuzz-1",
        msisdn=line.msisdn,
        plan_code=hkd_plan.code,
        mode="two_step",
        allow_repeat=True,
        now=now,
    )
    KEY.key_id, KEY.secret = key.key.key_id, key.secret
    yield KEY
    KEY.key_id = KEY.secret = ""


@unsigned_schema.parametrize()
@fuzzing.FUZZ_SETTINGS
def test_agent_api_unsigned(case: Any, key: NewKey) -> None:
    case.call_and_validate()


@signed_schema.parametrize()
@fuzzing.FUZZ_SETTINGS
def test_agent_api_signed(case: Any, signed_key: Credentials) -> None:
    response = case.call_and_validate()
    # The signature is made right: the request got past the door.
    if response.status_code == 401:
        code = response.json().get("code")
        assert code not in {"signature_invalid", "nonce_replayed", "signature_expired"}, (
            code,
            wire_request(case),
        )
