"""Signed requests: every way a signature can be wrong is a 401 problem and
writes nothing; suspension closes the API at once; keys rotate and revoke."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings

from leb.agents import signing
from leb.agents.actions import (
    AgentError,
    do_create_api_key,
    do_revoke_api_key,
    do_rotate_api_key,
    do_set_agent_status,
    purge_nonces,
)
from leb.agents.models import Agent, AgentNonce, AgentStatus, AgentTopUp
from leb.agents.tests.helpers import SignedClient, problem
from leb.audit.models import AuditEntry
from leb.common import clock

pytestmark = pytest.mark.django_db
BALANCE = "/agent/v1/balance"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "agents.md"


def test_the_worked_example_in_the_docs_gives_this_signature() -> None:
    # given: the inputs printed in docs/agents.md
    body = (
        b'{"external_id":"INV-1001","msisdn":"+85294000001","plan_code":"hk-50","mode":"instant"}'
    )

    # when
    with override_settings(AGENTS_KEY_PEPPER="example-pepper"):
        secret = signing.derive_secret("lak_0123456789abcdef", "00112233445566778899aabbccddeeff")
    signature = signing.sign(
        secret, "POST", "/agent/v1/topups", "1780286400", "n-7f3a9c2e4b1d6a80", body
    )

    # then
    assert secret == "las_olUsXA6pUxlxr1YpepBRdPMGxaffictWA4Cuso6y78g"
    assert signature == "79cb952b593d6901e69bbc696528f65f1f1ef991e6d5daaa36c1264f5da4e160"
    text = DOCS.read_text()
    assert secret in text
    assert signature in text
    assert body.decode() in text


def test_a_signed_request_is_accepted(api: SignedClient, agent: Agent) -> None:
    # when
    response = api.get(BALANCE)

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["available"]["amount"] == 100_000
    assert body["reserved"]["amount"] == 0
    assert body["balance"]["amount"] == 100_000
    assert body["currency"] == "HKD"


def test_an_unsigned_request_is_refused(agent: Agent) -> None:
    # when
    response = Client().get(BALANCE)

    # then
    problem(response, 401, "signature_missing")
    assert response["WWW-Authenticate"]


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_stale_or_future_timestamp_is_refused(api: SignedClient, offset: int) -> None:
    # when
    response = api.get(BALANCE, timestamp=int(clock.now().timestamp()) + offset)

    # then
    problem(response, 401, "signature_expired")
    assert AgentNonce.objects.count() == 0


def test_a_replayed_nonce_is_refused(api: SignedClient) -> None:
    # given
    assert api.get(BALANCE, nonce="the-same-nonce-0001").status_code == 200

    # when
    response = api.get(BALANCE, nonce="the-same-nonce-0001")

    # then
    problem(response, 401, "nonce_replayed")


def test_a_short_nonce_is_refused(api: SignedClient) -> None:
    problem(api.get(BALANCE, nonce="short"), 401, "nonce_invalid")


def test_a_tampered_body_is_refused_and_nothing_is_written(
    api: SignedClient, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given: signed for one number, sent for another
    line = make_line()
    signed_for = b'{"external_id": "x", "msisdn": "+85294000000", "plan_code": "hk-50"}'

    # when
    response = api.post(
        "/agent/v1/topups",
        {"external_id": "x", "msisdn": line.msisdn, "plan_code": hkd_plan.code},
        sign_body=signed_for,
    )

    # then
    problem(response, 401, "signature_invalid")
    assert AgentTopUp.objects.count() == 0
    assert AgentNonce.objects.count() == 0


def test_a_tampered_query_string_is_refused(api: SignedClient) -> None:
    # given
    headers = signing.signed_headers(
        api.key_id,
        api.secret,
        "GET",
        "/agent/v1/statement?from=2026-06-01&to=2026-06-01",
        b"",
        int(clock.now().timestamp()),
        "nonce-query-000001",
    )

    # when
    response = api.client.get("/agent/v1/statement?from=2026-05-01&to=2026-06-01", headers=headers)

    # then
    problem(response, 401, "signature_invalid")


def test_a_wrong_secret_is_refused(api: SignedClient) -> None:
    # given
    forged = SignedClient(api.client, api.key_id, "las_not-the-secret")

    # when / then
    problem(forged.get(BALANCE), 401, "signature_invalid")


def test_an_unknown_key_is_refused(api: SignedClient) -> None:
    forged = SignedClient(api.client, "lak_ffffffffffffffff", api.secret)
    problem(forged.get(BALANCE), 401, "key_unknown")


def test_a_revoked_key_is_refused_and_revocation_is_audited(api: SignedClient, key: Any) -> None:
    # given
    do_revoke_api_key(key.key, actor="staff:boss")

    # when
    response = api.get(BALANCE)

    # then
    problem(response, 401, "key_revoked")
    assert AuditEntry.objects.filter(action="agent.key.revoke").count() == 1


def test_a_rotated_key_works_until_the_overlap_ends(api: SignedClient, key: Any) -> None:
    # given
    new = do_rotate_api_key(key.key, actor="staff:boss", overlap=timedelta(hours=1))
    fresh = SignedClient(api.client, new.key.key_id, new.secret)

    # when / then
    assert api.get(BALANCE).status_code == 200
    assert fresh.get(BALANCE).status_code == 200
    clock.advance(timedelta(hours=1, seconds=1))
    problem(api.get(BALANCE), 401, "key_revoked")
    assert fresh.get(BALANCE).status_code == 200
    do_revoke_api_key(key.key, actor="staff:boss")
    with pytest.raises(AgentError):
        do_rotate_api_key(key.key, actor="staff:boss")


def test_the_secret_is_not_stored(key: Any) -> None:
    # given
    from leb.agents.models import AgentApiKey

    row = AgentApiKey.objects.filter(pk=key.key.pk).values().get()

    # then
    assert key.secret not in str(row)
    assert signing.derive_secret(row["key_id"], row["salt"]) == key.secret


@pytest.mark.parametrize("status", [AgentStatus.SUSPENDED, AgentStatus.TERMINATED])
def test_a_suspended_or_terminated_agent_is_refused_at_once(
    api: SignedClient, agent: Agent, status: str
) -> None:
    # given
    do_set_agent_status(agent, status, actor="staff:boss", reason="audit")

    # when
    response = api.get(BALANCE)

    # then
    problem(response, 403, "agent_suspended")
    assert AuditEntry.objects.filter(action=f"agent.{status}").count() == 1


def test_a_suspended_agent_can_be_reactivated_but_not_a_terminated_one(
    api: SignedClient, agent: Agent
) -> None:
    # given
    do_set_agent_status(agent, AgentStatus.SUSPENDED, actor="staff:boss")

    # when
    do_set_agent_status(agent, AgentStatus.ACTIVE, actor="staff:boss")

    # then
    assert api.get(BALANCE).status_code == 200
    do_set_agent_status(agent, AgentStatus.TERMINATED, actor="staff:boss")
    with pytest.raises(AgentError) as refused:
        do_set_agent_status(agent, AgentStatus.ACTIVE, actor="staff:boss")
    assert refused.value.code == "agent_terminated"


@override_settings(AGENTS_API_RATE="2/m")
def test_each_key_is_rate_limited_with_retry_after(api: SignedClient, agent: Agent) -> None:
    # given
    other = do_create_api_key(agent, actor="staff:test")
    assert api.get(BALANCE).status_code == 200
    assert api.get(BALANCE).status_code == 200

    # when
    response = api.get(BALANCE)

    # then
    problem(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1
    assert SignedClient(api.client, other.key.key_id, other.secret).get(BALANCE).status_code == 200


def test_old_nonces_are_purged(api: SignedClient) -> None:
    # given
    api.get(BALANCE)
    assert AgentNonce.objects.count() == 1

    # when
    clock.advance(timedelta(minutes=11))
    purged = purge_nonces()

    # then
    assert purged == 1
    assert AgentNonce.objects.count() == 0


def test_the_openapi_document_lists_the_endpoints(api: SignedClient) -> None:
    # when
    response = Client().get("/agent/v1/openapi.json")
    docs = Client().get("/agent/v1/docs")

    # then
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert {
        "/agent/v1/quotes",
        "/agent/v1/topups",
        "/agent/v1/topups/{topup_id}",
        "/agent/v1/topups/{topup_id}/confirm",
        "/agent/v1/balance",
        "/agent/v1/statement",
    } <= paths
    assert docs.status_code == 200
    assert re.search(r"swagger|redoc", docs.content.decode(), re.I)


def test_a_path_signed_as_sent_with_percent_escapes_is_accepted(api: SignedClient) -> None:
    """A client that escapes `,` as `%2C` signs the path as it sends it;
    Django re-encodes the path as `,`, so the raw request line is checked too."""
    # given
    sent = "/agent/v1/topups/%2C"
    headers = signing.signed_headers(
        api.key_id, api.secret, "GET", sent, b"", int(clock.now().timestamp()), "nonce-raw-0000001"
    )

    # when
    response = api.client.get(sent, headers=headers, RAW_URI=sent)

    # then: past the signature check, to the handler
    problem(response, 404, "not_found")


def test_a_raw_request_line_is_no_way_around_the_signature(api: SignedClient) -> None:
    # given: signed for one top-up, sent for another
    headers = signing.signed_headers(
        api.key_id,
        api.secret,
        "GET",
        "/agent/v1/topups/a",
        b"",
        int(clock.now().timestamp()),
        "nonce-raw-0000002",
    )

    # when
    response = api.client.get("/agent/v1/topups/b", headers=headers, RAW_URI="/agent/v1/topups/b")

    # then
    problem(response, 401, "signature_invalid")


def test_the_openapi_document_declares_every_problem_as_problem_json() -> None:
    # when
    doc = Client().get("/agent/v1/openapi.json").json()

    # then
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
            if "requestBody" in operation:
                assert "400" in operation["responses"], (method, path)
