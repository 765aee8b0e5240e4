# ruff: noqa: RUF001
"""The shared bad-input corpus (leb/common/tests/bad_input.py) through the
agent portal's sell flow, the signed agent API's top-up and lookup
operations, and the back office pages that show what agents send: every
input gets a clear, translated answer (never a 500), bad input writes nothing
(no agent top-up, order, ledger transfer or float movement), and what is
legitimately accepted (an external id such as "<script>…") is stored
verbatim and shown escaped."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.encoding import escape_uri_path

from leb.agents import signing
from leb.agents.models import Agent, AgentTopUp
from leb.agents.queries import balance
from leb.common import clock
from leb.common.tests.bad_input import IMG, RAW_JSON, SCRIPT, cases, unescaped
from leb.ledger.models import Transfer
from leb.topups.models import TopUpOrder

from .helpers import SignedClient
from .test_portal_sell import TICKET, choose_number

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

FIELD_INPUTS = cases("text", "msisdns", "numbers")
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(autouse=True)
def _no_throttle(settings: Any) -> None:
    settings.AGENTS_API_RATE = ""


def written(agent: Agent) -> tuple[int, int, int, int]:
    return (
        AgentTopUp.objects.count(),
        TopUpOrder.objects.count(),
        Transfer.objects.count(),
        balance(agent).available,
    )


def page_of(response: Any, case: str = "") -> str:
    assert response.status_code < 500, (case, response.status_code)
    text = response.content.decode()
    assert not unescaped(text), (case, unescaped(text))
    return text


def problem(response: Any, case: str = "") -> dict[str, Any]:
    assert response.status_code in (400, 404, 409, 422), (case, response.status_code)
    assert response["Content-Type"] == "application/problem+json", case
    body = response.json()
    assert body["detail"] and body["code"], case
    return body


def as_json_number(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


# --- The signed agent API -----------------------------------------------------------


def test_every_bad_top_up_field_is_a_problem_and_writes_nothing(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    line = make_line()
    good = {"msisdn": line.msisdn, "plan_code": hkd_plan.code}
    before = written(agent)
    sent: list[tuple[str, Any]] = []
    for field in ("msisdn", "plan_code", "mode"):
        sent += [(f"{field}-{case}", {**good, field: value}) for case, value in FIELD_INPUTS]
        sent += [
            (f"{field}-{case}-as-json", {**good, field: as_json_number(value)})
            for case, value in cases("numbers")
        ]
    # a flag: JSON booleans (and pydantic's "true", "0"…) only
    sent += [
        (f"allow_repeat-{case}", {**good, "allow_repeat": value})
        for case, value in cases("text", "numbers")
        if value.strip().lower() not in ("0", "1", "true", "false")
    ]
    for number, (case, body) in enumerate(sent):
        response = api.post("/agent/v1/topups", {"external_id": f"bad-{number}", **body})
        if response.status_code == 201 and case.startswith("plan_code-"):
            # A slug that names no plan is the documented business refusal: kept
            # as a failed top-up with its reason; no order, no money moved.
            refused = AgentTopUp.objects.get(external_id=f"bad-{number}")
            assert (refused.status, refused.reason_detail) == ("failed", "plan_unknown"), case
            assert refused.plan_code == body["plan_code"], case
            continue
        problem(response, case)
    assert written(agent)[1:] == before[1:]
    # what reached the books: only those slug-shaped unknown codes, as failed top-ups
    assert not AgentTopUp.objects.exclude(status="failed").exists()


def test_a_body_no_string_can_hold_is_a_problem(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    line = make_line()
    before = written(agent)
    for case, raw in RAW_JSON:
        for field in ("external_id", "msisdn", "plan_code"):
            body = {"external_id": "raw-1", "msisdn": line.msisdn, "plan_code": hkd_plan.code}
            body[field] = "@@RAW@@"
            data = json.dumps(body).encode().replace(b'"@@RAW@@"', raw)
            headers = signing.signed_headers(
                api.key_id,
                api.secret,
                "POST",
                "/agent/v1/topups",
                data,
                int(clock.now().timestamp()),
                f"raw-{case}-{field}",
            )
            response = api.client.generic(
                "POST", "/agent/v1/topups", data, content_type="application/json", headers=headers
            )
            problem(response, f"{case}-{field}")
    assert written(agent) == before


def test_an_external_id_is_refused_or_kept_verbatim(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    line = make_line()
    kept: list[str] = []
    for case, value in FIELD_INPUTS:
        before = written(agent)
        body = {"external_id": value, "msisdn": line.msisdn, "plan_code": hkd_plan.code}
        response = api.post("/agent/v1/topups", {**body, "allow_repeat": True})
        if response.status_code == 201:
            # visible ASCII: the agent's own id, stored exactly as sent (ends trimmed)
            assert AgentTopUp.objects.get(external_id=value.strip()).agent == agent, case
            assert response.json()["external_id"] == value.strip(), case
            kept.append(value.strip())
            continue
        # too long or empty: the schema's own refusal; any other: ours
        assert problem(response, case)["code"] in ("external_id_invalid", "validation_error")
        assert written(agent) == before, case
        # and looking it up is the same clear refusal, never a 500
        lookup = api.get("/agent/v1/topups?" + urlencode({"external_id": value}))
        assert problem(lookup, case)["code"] == "external_id_invalid", case
    assert SCRIPT in kept and IMG in kept
    # control characters, invisible and non-ASCII characters are refused
    assert not any(ch in "".join(kept) for ch in "\x00\r\n\x1b\u200b\u200d\u202e")
    assert all(value.isascii() for value in kept)


def test_lookups_answer_every_bad_input_with_a_problem(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    line = make_line()
    before = written(agent)
    for case, value in FIELD_INPUTS:
        problem(api.post("/agent/v1/quotes", {"msisdn": value, "plan_code": hkd_plan.code}), case)
        problem(api.post("/agent/v1/quotes", {"msisdn": line.msisdn, "plan_code": value}), case)
        for name in ("from", "to", "format"):
            query = {"from": "2026-06-01", "to": "2026-06-30", name: value}
            problem(api.get("/agent/v1/statement?" + urlencode(query)), f"{name}-{case}")
        if value.strip() and "/" not in value:  # a "/" makes it another address
            # percent-encoded as Django re-encodes it, so the signature matches
            path = "/agent/v1/topups/" + escape_uri_path(value)
            problem(api.get(path), case)
            problem(api.post(path + "/confirm"), case)
    assert written(agent) == before


def test_agent_api_refusals_are_translated(
    api: SignedClient, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    line = make_line()
    body = {"external_id": "x\u202ey", "msisdn": line.msisdn, "plan_code": hkd_plan.code}
    zh_hans = api.post("/agent/v1/topups", body, headers={"Accept-Language": "zh-hans"})
    assert problem(zh_hans)["detail"] == (
        "external_id 须为 1 至 64 个 ASCII 字母、数字、标点符号或中间的空格。"
    )
    body = {"external_id": "ok-1", "msisdn": line.msisdn, "plan_code": SCRIPT}
    zh_hant = api.post("/agent/v1/topups", body, headers={"Accept-Language": "zh-hant"})
    found = problem(zh_hant)
    assert found["code"] == "plan_code_invalid"
    assert found["detail"] == "這不是套餐代碼：請提供套餐的代碼，例如 hk-30。"
    quoted = api.post(
        "/agent/v1/quotes",
        {"msisdn": "+852ABCDEFGH", "plan_code": hkd_plan.code},
        headers={"Accept-Language": "zh-hant"},
    )
    assert problem(quoted)["detail"] == "這不是有效的電話號碼。"


# --- The agent portal's sell flow -----------------------------------------------------


def test_the_portal_number_field_refuses_every_bad_input(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any]
) -> None:
    make_line()
    before = written(agent)
    for case, value in FIELD_INPUTS:
        response = seller_portal.post(reverse("agent-portal:sell"), {"msisdn": value})
        assert response.status_code == 400, (case, response.status_code)
        page_of(response, case)
    assert written(agent) == before


def test_the_portal_plan_choice_and_links_refuse_every_bad_input(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    line = make_line()
    token = choose_number(seller_portal, line.msisdn)
    good = seller_portal.get(reverse("agent-portal:sell_quote", args=[token, hkd_plan.code]))
    found = TICKET.search(good.content.decode())
    assert found
    ticket = found.group(1)
    before = written(agent)
    plans = reverse("agent-portal:sell_plans", args=[token])
    quote_url = reverse("agent-portal:sell_quote", args=[token, hkd_plan.code])
    for case, value in FIELD_INPUTS:
        # the plan choice
        response = seller_portal.post(plans, {"plan": value})
        assert response.status_code == 400, case
        page_of(response, case)
        # the confirm form's ticket
        response = seller_portal.post(quote_url, {"ticket": value})
        assert response.status_code == 400, case
        page_of(response, case)
    for case, value in cases("text"):
        if not value.strip():
            continue
        # the plan code and the number token in the address
        bad_plan = f"/agent/portal/sell/{token}/{quote(value, safe='')}/"
        response = seller_portal.get(bad_plan)
        assert response.status_code in (400, 404, 422), case
        page_of(response, case)
        response = seller_portal.post(bad_plan, {"ticket": ticket})
        assert response.status_code in (400, 404, 422), case
        page_of(response, case)
        response = seller_portal.get(f"/agent/portal/sell/{quote(value, safe='')}/")
        assert response.status_code in (400, 404), case
        page_of(response, case)
        # a sale's page, by an id that is none
        response = seller_portal.get(f"/agent/portal/sales/{quote(value, safe='')}/")
        assert response.status_code == 404, case
    assert written(agent) == before


def test_portal_sell_errors_are_translated(
    seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    line = make_line()
    number = seller_portal.post(
        reverse("agent-portal:sell"), {"msisdn": "+852ABCDEFGH"}, HTTP_ACCEPT_LANGUAGE="zh-hant"
    )
    assert "這不是有效的電話號碼。" in page_of(number)
    token = choose_number(seller_portal, line.msisdn)
    plan = seller_portal.post(
        reverse("agent-portal:sell_plans", args=[token]),
        {"plan": SCRIPT},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "请从您可向此号卡销售的套餐中选择一个。" in page_of(plan)
    code = seller_portal.get(
        f"/agent/portal/sell/{token}/{quote(IMG, safe='')}/", HTTP_ACCEPT_LANGUAGE="zh-hant"
    )
    assert code.status_code == 422
    assert "這不是套餐代碼：請提供套餐的代碼，例如 hk-30。" in page_of(code)
    ticket = seller_portal.post(
        reverse("agent-portal:sell_quote", args=[token, hkd_plan.code]),
        {"ticket": SCRIPT},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "此链接无效。请重新开始销售。" in page_of(ticket)


# --- What agents send, in the back office ------------------------------------------


@pytest.fixture
def staff_client(recorder: Any) -> Client:
    client = Client()
    client.force_login(recorder)
    return client


def test_agent_text_is_escaped_in_the_back_office(
    make_agent: Callable[..., Agent],
    fund: Callable[[Agent, int], None],
    staff_client: Client,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: Any,
) -> None:
    from leb.agents.actions import do_create_agent_topup

    # given an agent whose names are markup, and sales whose external ids are
    agent = make_agent(legal_name=IMG, display_name=SCRIPT, contact_email="x@example.com")
    fund(agent, 100_000)
    line = make_line()
    sold = do_create_agent_topup(
        agent, external_id=SCRIPT, msisdn=line.msisdn, plan_code=hkd_plan.code, now=now
    ).topup
    refused = do_create_agent_topup(
        agent, external_id=IMG, msisdn=line.msisdn, plan_code=hkd_plan.code, now=now
    ).topup
    assert sold.external_id == SCRIPT and refused.external_id == IMG
    assert Agent.objects.get(pk=agent.pk).display_name == SCRIPT
    assert sold.order is not None

    # then every back-office page that shows them shows them as text
    pages = [
        "/ops/agents/agent/",
        f"/ops/agents/agent/{agent.pk}/change/",
        "/ops/agents/agenttopup/",
        f"/ops/agents/agenttopup/{sold.pk}/change/",
        f"/ops/agents/agenttopup/{refused.pk}/change/",
        "/ops/topups/topuporder/",
        f"/ops/topups/topuporder/{sold.order.pk}/change/",
        "/ops/ledger/transfer/",
    ]
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        text = page_of(response, url)
        if "agenttopup" in url or url.endswith("/agents/agent/"):
            assert ESCAPED_SCRIPT in text or "&lt;img" in text, url
