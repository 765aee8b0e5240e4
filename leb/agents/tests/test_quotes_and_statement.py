"""POST /agent/v1/quotes, GET /agent/v1/statement (JSON and CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from leb.agents.models import Agent, AgentPlanDiscount, AgentTopUp
from leb.agents.tests.helpers import SignedClient, problem
from leb.common import clock
from leb.ledger.models import TransferGroup

pytestmark = pytest.mark.django_db
QUOTES = "/agent/v1/quotes"
STATEMENT = "/agent/v1/statement"


def test_a_quote_gives_wholesale_retail_credit_and_days(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    line = make_line()
    groups = TransferGroup.objects.count()

    # when
    response = api.post(QUOTES, {"msisdn": line.msisdn, "plan_code": hkd_plan.code})

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["wholesale_price"]["amount"] == 4500
    assert body["retail_value"]["amount"] == 5000
    assert body["credit"]["amount"] == 5000
    assert body["days_added"] == 180
    assert body["new_valid_until"]
    assert TransferGroup.objects.count() == groups
    assert AgentTopUp.objects.count() == 0


def test_a_per_plan_discount_replaces_the_agents_default(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    AgentPlanDiscount.objects.create(
        agent=agent, plan_code=hkd_plan.code, discount_percent=Decimal("12.5")
    )

    # when
    response = api.post(QUOTES, {"msisdn": make_line().msisdn, "plan_code": hkd_plan.code})

    # then
    assert response.json()["wholesale_price"]["amount"] == 4375


def test_quote_refusals_have_stable_codes(
    api: SignedClient,
    make_agent: Callable[..., Agent],
    make_line: Callable[..., Any],
    hkd_plan: Any,
) -> None:
    # given
    gone = make_line()
    gone.valid_until = clock.now() - timedelta(days=400)
    gone.save(update_fields=["valid_until"])
    capped = make_line()
    capped.valid_until = clock.now() + timedelta(days=365)
    capped.save(update_fields=["valid_until"])
    from leb.catalog.models import Plan

    Plan.objects.create(
        code="hk-days",
        name_en="days only",
        name_zh_hans="天数",
        name_zh_hant="日數",
        currency="HKD",
        price=1000,
        credit=0,
        validity_days=30,
    )

    # when / then
    problem(
        api.post(QUOTES, {"msisdn": "not a number", "plan_code": "hk-50"}), 422, "invalid_number"
    )
    problem(api.post(QUOTES, {"msisdn": "+85294999999", "plan_code": "hk-50"}), 404, "line_unknown")
    problem(api.post(QUOTES, {"msisdn": gone.msisdn, "plan_code": "hk-50"}), 422, "line_terminated")
    problem(
        api.post(QUOTES, {"msisdn": capped.msisdn, "plan_code": "hk-days"}), 422, "adds_nothing"
    )
    problem(
        api.post(QUOTES, {"msisdn": capped.msisdn, "plan_code": "nope"}), 422, "plan_not_allowed"
    )
    problem(api.post(QUOTES, {"msisdn": capped.msisdn}), 422, "validation_error")


def test_a_refusal_is_translated(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any]
) -> None:
    # when
    response = api.post(
        QUOTES,
        {"msisdn": make_line().msisdn, "plan_code": "nope"},
        headers={"Accept-Language": "zh-hans"},
    )

    # then
    body = problem(response, 422, "plan_not_allowed")
    assert response["Content-Language"] == "zh-hans"
    assert body["detail"]


def _sell(api: SignedClient, line: Any, plan: Any, external_id: str, **extra: Any) -> Any:
    return api.post(
        "/agent/v1/topups",
        {"external_id": external_id, "msisdn": line.msisdn, "plan_code": plan.code, **extra},
    )


def test_the_statement_lists_every_float_movement_with_a_running_balance(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given: the deposit (100,000), a sale, a two-step confirmed
    _sell(api, make_line(), hkd_plan, "a")
    held = _sell(api, make_line(), hkd_plan, "b", mode="two_step").json()
    api.post(f"/agent/v1/topups/{held['id']}/confirm")

    # when
    response = api.get(f"{STATEMENT}?from=2026-06-01&to=2026-06-01")

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["opening_balance"] == 0
    amounts = [row["amount"] for row in body["rows"]]
    assert amounts == [100_000, -4500, -4500, 4500, -4500]
    assert [row["balance"] for row in body["rows"]][-1] == 100_000 - 9000
    assert body["closing_balance"] == 100_000 - 9000
    assert body["rows"][1]["reference"] == f"agent:{agent.code}:a"


def test_the_statement_as_csv_and_an_earlier_opening_balance(
    api: SignedClient, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given
    clock.advance(timedelta(days=1))
    _sell(api, make_line(), hkd_plan, "a")
    day = clock.now().date().isoformat()

    # when
    by_param = api.get(f"{STATEMENT}?from={day}&to={day}&format=csv")
    by_accept = api.get(f"{STATEMENT}?from={day}&to={day}", headers={"Accept": "text/csv"})

    # then
    assert by_param.status_code == 200
    assert by_param["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(by_param.content.decode())))
    assert [(r["amount"], r["balance"]) for r in rows] == [("-4500", "95500")]
    assert by_accept.content == by_param.content
    opening = api.get(f"{STATEMENT}?from={day}&to={day}").json()["opening_balance"]
    assert opening == 100_000


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "date_invalid"),
        ("?from=2026-06-01", "date_invalid"),
        ("?from=2026-13-01&to=2026-06-01", "date_invalid"),
        ("?from=yesterday&to=2026-06-01", "date_invalid"),
        # Python reads these as dates too; the API takes YYYY-MM-DD only.
        ("?from=20260601&to=2026-06-01", "date_invalid"),
        ("?from=2026-W22-1&to=2026-06-01", "date_invalid"),
        ("?from=2026-06-01&to=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-06-01", "date_invalid"),
        ("?from=2026-06-01&to=2026-06-01&format=xml", "format_invalid"),
        ("?from=2026-06-01&to=2026-06-01&format=", "format_invalid"),
        ("?from=2026-06-02&to=2026-06-01", "date_range_invalid"),
        ("?from=2020-01-01&to=2026-06-01", "date_range_invalid"),
    ],
)
def test_bad_statement_dates_are_a_422_problem(api: SignedClient, query: str, code: str) -> None:
    problem(api.get(f"{STATEMENT}{query}"), 422, code)


def test_the_openapi_document_declares_the_csv_statement() -> None:
    # when
    doc = Client().get("/agent/v1/openapi.json").json()

    # then
    ok = doc["paths"]["/agent/v1/statement"]["get"]["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/csv"}
