"""The outsider rule for both APIs: every operation of `/api/v1` and
`/agent/v1`, as their OpenAPI documents list them, is classified here, and
every operation on someone's object is tried by someone else: another
subscriber's token or session on `/api/v1`, another agent's signature on
`/agent/v1`. They get a 404 problem and nothing is written. A new operation
that is not classified fails `test_every_api_operation_is_classified`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.forms.models import model_to_dict
from django.test import Client

from leb.agents.actions import (
    do_approve_deposit,
    do_create_agent,
    do_create_agent_topup,
    do_create_api_key,
    do_record_deposit,
)
from leb.agents.tests.helpers import SignedClient
from leb.api.actions import do_create_personal_token
from leb.common import clock
from leb.testing import bearer

pytestmark = pytest.mark.django_db

SUBSCRIBER = "owned-by-subscriber"  # another subscriber gets a 404
AGENT = "owned-by-agent"  # another agent gets a 404
CALLER = "the caller's own"  # no object named: answers only about the caller
PUBLIC = "public"

OPERATIONS: dict[str, tuple[str, str]] = {
    # /api/v1
    "GET /api/v1/lines/check": (PUBLIC, "a number's public status: no owner, no balance"),
    "GET /api/v1/plans": (PUBLIC, "the catalog"),
    "POST /api/v1/quotes": (PUBLIC, "a price for any number; writes nothing"),
    "POST /api/v1/orders": (PUBLIC, "anyone may top up any number; the order is the caller's"),
    "POST /api/v1/vouchers/redeem": (PUBLIC, "the PIN is the secret; limited and locked out"),
    "GET /api/v1/agents/verify": (PUBLIC, "the public register of authorised agents"),
    "GET /api/v1/agents": (PUBLIC, "as above"),
    "GET /api/v1/me/lines": (CALLER, ""),
    "GET /api/v1/receipts": (CALLER, ""),
    "GET /api/v1/me/payment-methods": (CALLER, ""),
    "GET /api/v1/orders/{public_id}": (SUBSCRIBER, ""),
    "POST /api/v1/orders/{public_id}/payments": (SUBSCRIBER, ""),
    "GET /api/v1/payments/{attempt_id}": (SUBSCRIBER, ""),
    "GET /api/v1/receipts/{receipt_number}": (SUBSCRIBER, ""),
    "GET /api/v1/me/lines/{line_id}/autokeep": (SUBSCRIBER, ""),
    "PUT /api/v1/me/lines/{line_id}/autokeep": (SUBSCRIBER, ""),
    "GET /api/v1/me/lines/{line_id}/keep-plan": (SUBSCRIBER, ""),
    # /agent/v1: every request is signed by one agent's key
    "POST /agent/v1/quotes": (CALLER, "a price at the signing agent's rate; writes nothing"),
    "POST /agent/v1/topups": (CALLER, "a sale by the signing agent, from its own float"),
    "GET /agent/v1/topups": (AGENT, ""),  # by external_id: the query names the object
    "GET /agent/v1/topups/{topup_id}": (AGENT, ""),
    "POST /agent/v1/topups/{topup_id}/confirm": (AGENT, ""),
    "GET /agent/v1/balance": (CALLER, ""),
    "GET /agent/v1/statement": (CALLER, ""),
}


def documented_operations() -> set[str]:
    client = Client()
    found = set()
    for url in ("/api/v1/openapi.json", "/agent/v1/openapi.json"):
        for path, methods in client.get(url).json()["paths"].items():
            found |= {f"{method.upper()} {path}" for method in methods}
    return found


def test_every_api_operation_is_classified() -> None:
    documented = documented_operations()
    unclassified = documented - set(OPERATIONS)
    assert not unclassified, f"classify (and try as an outsider): {sorted(unclassified)}"
    assert not set(OPERATIONS) - documented, "classified operations that no longer exist"


def test_every_parameterised_operation_is_owned_or_public() -> None:
    for operation, (kind, reason) in OPERATIONS.items():
        if "{" in operation:
            assert kind in (SUBSCRIBER, AGENT), operation
        if kind == PUBLIC:
            assert reason, f"say why {operation} is public"


# --- What "nothing was written" means ---------------------------------------------------


def snapshot(*objects: Any) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Rows per table (sessions and task rows aside), and the objects' fields."""
    # The session a request signs in with, and the nonce an agent's signature
    # spends (replay protection of the caller's own request), are the caller's.
    skip = {"sessions.Session", "agents.AgentNonce"}
    counts = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.label not in skip and not model._meta.proxy
    }
    fields = []
    for obj in objects:
        obj.refresh_from_db()
        fields.append(model_to_dict(obj))
    return counts, fields


def assert_unchanged(before: Any, after: Any) -> None:
    (counts, fields), (counts_after, fields_after) = before, after
    changed = {k: (v, counts_after[k]) for k, v in counts.items() if counts_after[k] != v}
    assert not changed, changed
    assert fields == fields_after


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


# --- /api/v1: another subscriber ------------------------------------------------------


def api_request(name: str, objects: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
    line, order, attempt = objects["line"], objects["order"], objects["attempt"]
    return {
        "GET /api/v1/orders/{public_id}": ("get", f"/api/v1/orders/{order.public_id}", None),
        "POST /api/v1/orders/{public_id}/payments": (
            "post",
            f"/api/v1/orders/{order.public_id}/payments",
            {"provider": "sandbox"},
        ),
        "GET /api/v1/payments/{attempt_id}": ("get", f"/api/v1/payments/{attempt.public_id}", None),
        "GET /api/v1/receipts/{receipt_number}": (
            "get",
            f"/api/v1/receipts/{order.receipt_number}",
            None,
        ),
        "GET /api/v1/me/lines/{line_id}/autokeep": (
            "get",
            f"/api/v1/me/lines/{line.pk}/autokeep",
            None,
        ),
        "PUT /api/v1/me/lines/{line_id}/autokeep": (
            "put",
            f"/api/v1/me/lines/{line.pk}/autokeep",
            {"mode": "threshold", "plan_code": "hk-50", "days_before": 7},
        ),
        "GET /api/v1/me/lines/{line_id}/keep-plan": (
            "get",
            f"/api/v1/me/lines/{line.pk}/keep-plan",
            None,
        ),
    }[name]


def send(client: Client, method: str, url: str, body: Any, **extra: Any) -> Any:
    if body is None:
        return getattr(client, method)(url, **extra)
    return getattr(client, method)(url, body, content_type="application/json", **extra)


def outsider() -> Any:
    return get_user_model().objects.create_user(
        "api-outsider", email="api-outsider@example.com", password="x-long-pass-3"
    )


SUBSCRIBER_OPERATIONS = [op for op, (kind, _) in OPERATIONS.items() if kind == SUBSCRIBER]


@pytest.mark.parametrize("name", SUBSCRIBER_OPERATIONS)
@pytest.mark.parametrize("auth", ["token", "session"])
def test_another_subscriber_gets_a_404_and_writes_nothing(
    owned: dict[str, Any],
    name: str,
    auth: str,
) -> None:
    # given another subscriber, signed in by token or by session
    intruder = outsider()
    client = Client()
    extra: dict[str, Any] = {}
    if auth == "token":
        _token, clear = do_create_personal_token(intruder, "outsider's laptop")
        extra = bearer(clear)
    else:
        client.force_login(intruder)
    method, url, body = api_request(name, owned)
    before = snapshot(owned["line"], owned["order"], owned["attempt"], owned["method"])

    # when they call the operation on the owner's object
    response = send(client, method, url, body, **extra)

    # then it does not exist for them, and nothing changed
    assert response.status_code == 404, (name, response.status_code, response.content)
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"].endswith("_not_found")
    text = response.content.decode()
    assert owned["line"].msisdn not in text and owned["order"].receipt_number not in text
    assert_unchanged(
        before, snapshot(owned["line"], owned["order"], owned["attempt"], owned["method"])
    )


@pytest.mark.parametrize("name", SUBSCRIBER_OPERATIONS)
def test_the_owner_reaches_the_same_operations(
    owned: dict[str, Any],
    name: str,
) -> None:
    # the control: the same requests are right, so the outsider's 404 means something
    _token, clear = do_create_personal_token(owned["owner"], "owner's laptop")
    method, url, body = api_request(name, owned)
    response = send(Client(), method, url, body, **bearer(clear))
    assert response.status_code != 404, (name, response.content)
    assert response.status_code < 500


def test_the_callers_own_lists_hold_nothing_of_the_owners(
    owned: dict[str, Any],
) -> None:
    intruder = outsider()
    _token, clear = do_create_personal_token(intruder, "outsider's laptop")
    for url in ("/api/v1/me/lines", "/api/v1/receipts", "/api/v1/me/payment-methods"):
        response = Client().get(url, **bearer(clear))
        assert response.status_code == 200, url
        text = response.content.decode()
        assert owned["line"].msisdn not in text, url
        assert owned["order"].receipt_number not in text, url
        assert "4242" not in text, url  # the owner's saved card


# --- /agent/v1: another agent -------------------------------------------------------------


@pytest.fixture
def agents(owned: dict[str, Any], now: Any) -> dict[str, Any]:
    """Agent A (funded) sold to the owner's line: one instant top-up and one
    two-step top-up awaiting confirmation. Agent B has its own key."""
    staff = [
        get_user_model().objects.create_superuser(f"fin-{n}", f"fin-{n}@example.com", "pw-fin-123")
        for n in "ab"
    ]
    made: dict[str, Any] = {}
    for name, legal in (("a", "Kowloon Phones Ltd"), ("b", "Tsuen Wan Telecom Ltd")):
        agent = do_create_agent(
            actor="staff:test", legal_name=legal, display_name=legal, region="HK", currency="HKD"
        )
        deposit = do_record_deposit(
            agent,
            amount=100_000,
            currency="HKD",
            bank_reference=f"BANK-{name}",
            staff=staff[0],
            now=now,
        )
        do_approve_deposit(deposit, staff=staff[1], now=now)
        new_key = do_create_api_key(agent, actor="staff:test", now=now)
        made[name] = {
            "agent": agent,
            "api": SignedClient(Client(), new_key.key.key_id, new_key.secret),
        }
    msisdn = owned["line"].msisdn
    a = made["a"]["agent"]
    made["sold"] = do_create_agent_topup(
        a, external_id="a-sale-1", msisdn=msisdn, plan_code="hk-50", now=now
    ).topup
    made["pending"] = do_create_agent_topup(
        a,
        external_id="a-sale-2",
        msisdn=msisdn,
        plan_code="hk-50",
        mode="two_step",
        allow_repeat=True,
        now=now,
    ).topup
    return made


def agent_request(name: str, made: dict[str, Any]) -> tuple[str, str]:
    return {
        "GET /agent/v1/topups": ("GET", "/agent/v1/topups?external_id=a-sale-1"),
        "GET /agent/v1/topups/{topup_id}": ("GET", f"/agent/v1/topups/{made['sold'].public_id}"),
        "POST /agent/v1/topups/{topup_id}/confirm": (
            "POST",
            f"/agent/v1/topups/{made['pending'].public_id}/confirm",
        ),
    }[name]


AGENT_OPERATIONS = [op for op, (kind, _) in OPERATIONS.items() if kind == AGENT]


@pytest.mark.parametrize("name", AGENT_OPERATIONS)
def test_another_agent_gets_a_404_and_writes_nothing(
    agents: dict[str, Any],
    owned: dict[str, Any],
    name: str,
    now: Any,
) -> None:
    # given agent B's correctly signed request for agent A's top-up
    method, path = agent_request(name, agents)
    watched = (agents["sold"], agents["pending"], agents["a"]["agent"], owned["line"])
    before = snapshot(*watched)

    # when
    with clock.frozen(now):
        response = agents["b"]["api"].request(method, path, {} if method == "POST" else None)

    # then
    assert response.status_code == 404, (name, response.content)
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"  # the agent API's documented code
    assert "a-sale" not in response.content.decode()
    assert_unchanged(before, snapshot(*watched))


@pytest.mark.parametrize("name", AGENT_OPERATIONS)
def test_the_owning_agent_reaches_the_same_operations(
    agents: dict[str, Any], name: str, now: Any
) -> None:
    method, path = agent_request(name, agents)
    with clock.frozen(now):
        response = agents["a"]["api"].request(method, path, {} if method == "POST" else None)
    assert response.status_code == 200, (name, response.content)


def test_another_agents_balance_and_statement_hold_nothing_of_the_first(
    agents: dict[str, Any], now: Any
) -> None:
    with clock.frozen(now):
        day = now.date().isoformat()
        for path in ("/agent/v1/balance", f"/agent/v1/statement?from={day}&to={day}"):
            response = agents["b"]["api"].get(path)
            assert response.status_code == 200, (path, response.content)
            text = response.content.decode()
            assert "a-sale" not in text and str(agents["sold"].public_id) not in text, path


def test_a_made_up_id_is_the_same_404_as_another_agents(agents: dict[str, Any], now: Any) -> None:
    # what B learns about A's top-up is exactly what it learns about none at all
    with clock.frozen(now):
        theirs = agents["b"]["api"].get(f"/agent/v1/topups/{agents['sold'].public_id}")
        nobodys = agents["b"]["api"].get(f"/agent/v1/topups/{uuid.uuid4()}")
    assert theirs.status_code == nobodys.status_code == 404
    assert theirs.json()["code"] == nobodys.json()["code"]
