"""GET /api/v1/agents/verify and GET /api/v1/agents: public fields only,
problem documents for bad input and for too many requests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from leb.agents.actions import do_set_agent_status
from leb.agents.models import Agent, AgentChannel, AgentStatus, ChannelKind

pytestmark = pytest.mark.django_db
VERIFY = "/api/v1/agents/verify"
LIST = "/api/v1/agents"


@pytest.fixture
def shop(make_agent: Callable[..., Agent]) -> Agent:
    agent = make_agent(contact_email="owner@kowloon.example")
    AgentChannel.objects.create(
        agent=agent, kind=ChannelKind.SHOP_URL, value="https://shop.example.com/kowloon/"
    )
    AgentChannel.objects.create(agent=agent, kind=ChannelKind.HANDLE, value="@KowloonPhones")
    AgentChannel.objects.create(agent=agent, kind=ChannelKind.PHONE, value="+852 9123 4567")
    return agent


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("{code}", "code"),
        ("{lower}", "code"),
        ("shop.example.com/kowloon", "shop_url"),
        ("@kowloonphones", "handle"),
        ("9123 4567", "phone"),
    ],
)
def test_verify_finds_an_authorised_agent_by_each_kind(
    anonymous: Client, shop: Agent, now: datetime, query: str, kind: str
) -> None:
    # when
    response = anonymous.get(VERIFY, {"q": query.format(code=shop.code, lower=shop.code.lower())})

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["authorised"] is True and body["found"] is True
    assert body["query_kind"] == kind
    agent = body["agent"]
    assert agent["code"] == shop.code
    assert agent["status"] == "active"
    assert agent["legal_name"] == "Kowloon Phones Ltd"
    assert agent["display_name"] == "Kowloon Phones"
    assert agent["region"] == "HK"
    assert agent["authorised_since"].startswith("2026-06-01")
    assert agent["not_authorised_since"] is None
    assert {(c["kind"], c["value"]) for c in agent["channels"]} == {
        ("shop_url", "shop.example.com/kowloon"),
        ("handle", "kowloonphones"),
        ("phone", "+85291234567"),
    }
    # public fields only
    assert set(agent) == {
        "code",
        "authorised",
        "status",
        "status_label",
        "legal_name",
        "display_name",
        "region",
        "authorised_since",
        "not_authorised_since",
        "channels",
    }
    assert "owner@kowloon.example" not in response.content.decode()


@pytest.mark.parametrize("status", [AgentStatus.SUSPENDED, AgentStatus.TERMINATED])
def test_verify_says_a_suspended_or_terminated_agent_is_not_authorised(
    anonymous: Client, shop: Agent, now: datetime, status: str
) -> None:
    # given
    do_set_agent_status(shop, status, actor="staff:test", now=now + timedelta(days=3))

    # when
    body = anonymous.get(VERIFY, {"q": shop.code}).json()

    # then
    assert body["authorised"] is False and body["found"] is True
    assert body["agent"]["status"] == status
    assert body["agent"]["not_authorised_since"].startswith("2026-06-04")
    assert "Do not pay this seller" in body["message"]


def test_verify_of_an_unknown_seller_is_not_authorised_and_not_found(anonymous: Client) -> None:
    # when
    response = anonymous.get(VERIFY, {"q": "@fake_agent"})

    # then
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "query": "fake_agent",
        "query_kind": "handle",
        "authorised": False,
        "found": False,
        "message": body["message"],
        "agent": None,
    }
    assert "Not an authorised leb agent" in body["message"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "query_empty"),
        ({"q": "  "}, "query_empty"),
        ({"q": "x" * 201}, "query_invalid"),
        ({"q": "what?!"}, "query_invalid"),
        ({"q": "+852 1234"}, "msisdn_invalid"),
    ],
)
def test_verify_bad_input_is_a_422_problem(
    anonymous: Client, params: dict[str, str], code: str
) -> None:
    # when
    response = anonymous.get(VERIFY, params)

    # then
    body = problem(response, 422, code)
    assert body["errors"][0]["field"] == "q"


def test_verify_answers_in_the_requests_language(anonymous: Client) -> None:
    # when
    response = anonymous.get(VERIFY, {"q": ""}, HTTP_ACCEPT_LANGUAGE="zh-hant")

    # then
    problem(response, 422, "query_empty")
    assert response["Content-Language"] == "zh-hant"


def test_verify_is_rate_limited_per_address(anonymous: Client, settings: Any) -> None:
    # given
    settings.API_AGENT_VERIFY_RATE = "2/m"
    for _n in range(2):
        assert anonymous.get(VERIFY, {"q": "HK-AAAAAA"}).status_code == 200

    # when
    response = anonymous.get(VERIFY, {"q": "HK-AAAAAA"})

    # then
    problem(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0


def test_list_shows_active_agents_and_filters_by_region(
    anonymous: Client, make_agent: Callable[..., Agent], now: datetime
) -> None:
    # given
    hk = make_agent()
    gb = make_agent(
        display_name="Soho Sims", legal_name="Soho Sims Ltd", region="GB", currency="GBP"
    )
    gone = make_agent(display_name="Gone Mobile")
    do_set_agent_status(gone, AgentStatus.SUSPENDED, actor="staff:test", now=now)

    # when
    everyone = anonymous.get(LIST).json()
    only_hk = anonymous.get(LIST, {"region": "hk"}).json()

    # then
    assert [a["code"] for a in everyone] == [gb.code, hk.code]
    assert [a["code"] for a in only_hk] == [hk.code]
    assert all(a["authorised"] for a in everyone)


@pytest.mark.parametrize("region", ["HKG", "1", "香港"])
def test_list_with_a_bad_region_is_a_422_problem(anonymous: Client, region: str) -> None:
    # when
    response = anonymous.get(LIST, {"region": region})

    # then
    body = problem(response, 422, "region_invalid")
    assert body["errors"][0]["field"] == "region"


def test_list_is_rate_limited(anonymous: Client, settings: Any) -> None:
    # given
    settings.API_AGENT_LIST_RATE = "1/m"
    assert anonymous.get(LIST).status_code == 200

    # when
    response = anonymous.get(LIST)

    # then
    problem(response, 429, "rate_limited")
    assert response["Retry-After"]


def test_both_endpoints_are_in_the_openapi_document(anonymous: Client) -> None:
    # when
    paths = anonymous.get("/api/v1/openapi.json").json()["paths"]

    # then
    assert "/api/v1/agents/verify" in paths
    assert "/api/v1/agents" in paths
    responses = paths["/api/v1/agents/verify"]["get"]["responses"]
    assert {"200", "422", "429"} <= set(responses)
