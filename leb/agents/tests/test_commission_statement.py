"""The monthly commission statement: per month sales, wholesale, commission
(net of reversals), deposits and the float, from the ledger; for finance in
the back office and for the agent's owner in the portal, with CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from leb.agents.actions import (
    do_approve_deposit,
    do_create_agent_topup,
    do_record_deposit,
    do_reverse_agent_topup,
)
from leb.agents.models import Agent
from leb.agents.reports import Figures, monthly_statements, parse_month

pytestmark = pytest.mark.django_db
MAY, JUNE, JULY = date(2026, 5, 1), date(2026, 6, 1), date(2026, 7, 1)
MONTHS = {"month_from": "2026-05", "month_to": "2026-07"}


@pytest.fixture
def months_of_sales(
    agent: Agent,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    recorder: Any,
    approver: Any,
    now: datetime,
) -> Agent:
    """The agent (10 % off a HK$50 plan: 4,500 wholesale, 500 commission) got
    HK$1,000 on 1 June and sold twice that day; on 2 July it deposited HK$200,
    sold once more and one June sale was reversed."""
    july = now + timedelta(days=31)

    def sell(ext: str, at: datetime) -> Any:
        return do_create_agent_topup(
            agent, external_id=ext, msisdn=make_line().msisdn, plan_code=hkd_plan.code, now=at
        ).topup

    first = sell("J-1", now)
    sell("J-2", now + timedelta(minutes=3))
    deposit = do_record_deposit(
        agent, amount=20_000, currency="HKD", bank_reference="JULY-1", staff=recorder, now=july
    )
    do_approve_deposit(deposit, staff=approver, now=july)
    sell("J-3", july)
    do_reverse_agent_topup(first, staff=approver, reason="sold by mistake", now=july)
    return agent


def test_each_month_adds_up_from_the_ledger(months_of_sales: Agent) -> None:
    # when the statement of May to July is read
    may, june, july = monthly_statements(months_of_sales, MAY, JULY)
    # then May is empty, June has the deposit and two sales, July the rest
    assert (may.month, may.figures, may.deposits, may.opening_float, may.closing_float) == (
        MAY,
        Figures(),
        0,
        0,
        0,
    )
    assert june.figures == Figures(topups=2, wholesale=9_000, commission=1_000)
    assert (june.deposits, june.deposit_count) == (100_000, 1)
    assert (june.opening_float, june.closing_float) == (0, 91_000)
    assert july.figures == Figures(
        topups=1,
        wholesale=4_500,
        commission=500,
        reversals=1,
        reversed_wholesale=4_500,
        reversed_commission=500,
    )
    assert (july.figures.net_wholesale, july.figures.net_commission) == (0, 0)
    assert (july.deposits, july.opening_float, july.closing_float) == (20_000, 91_000, 111_000)


@pytest.mark.parametrize(
    ("first", "last", "code"),
    [("2026-13", "2026-07", "month_invalid"), ("July", "2026-07", "month_invalid")],
)
def test_a_bad_month_is_refused(first: str, last: str, code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_month(first)
    assert raised.value.code == code


def test_a_reversed_or_too_long_range_is_refused(agent: Agent) -> None:
    with pytest.raises(ValidationError):
        monthly_statements(agent, JULY, MAY)
    with pytest.raises(ValidationError):
        monthly_statements(agent, date(2020, 1, 1), JULY)


def _staff(django_user_model: Any, role: str) -> Client:
    user = django_user_model.objects.create_user(
        f"staff-{role}", password="x-unused-9", is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_finance_reads_and_downloads_the_statement(
    months_of_sales: Agent, django_user_model: Any
) -> None:
    client = _staff(django_user_model, "finance")
    url = reverse("admin:agents_agent_commission", args=[months_of_sales.code])
    page = client.get(url, MONTHS).content.decode()
    assert "2026-06" in page and "HKD\xa0910.00" in page
    response = client.get(url, {**MONTHS, "format": "csv"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["month", "currency", "topups"]
    assert rows[2] == [
        "2026-06", "HKD", "2", "10000", "9000", "1000", "0", "10000", "9000", "1000",
        "100000", "1", "0", "91000",
    ]  # fmt: skip


@pytest.mark.parametrize(("role", "status"), [("support", 403), ("finance", 200), ("admin", 200)])
def test_the_back_office_statement_answers_each_role(
    agent: Agent, django_user_model: Any, role: str, status: int
) -> None:
    url = reverse("admin:agents_agent_commission", args=[agent.code])
    assert _staff(django_user_model, role).get(url).status_code == status


def test_the_back_office_statement_refuses_bad_input_clearly(
    agent: Agent, django_user_model: Any
) -> None:
    client = _staff(django_user_model, "finance")
    url = reverse("admin:agents_agent_commission", args=[agent.code])
    page = client.get(url, {"month_from": "2026-9", "month_to": "soon"}).content.decode()
    assert "Enter a month as YYYY-MM" in page
    assert client.get(reverse("admin:agents_agent_commission", args=["NOPE"])).status_code == 404


def test_the_owner_reads_the_statement_in_the_portal(
    months_of_sales: Agent, owner_portal: Client
) -> None:
    url = reverse("agent-portal:commission")
    page = owner_portal.get(url, MONTHS)
    assert page.status_code == 200
    assert 'data-testid="commission-months"' in page.content.decode()
    assert "HKD" in page.content.decode() or "HK$" in page.content.decode()
    download = owner_portal.get(url, {**MONTHS, "format": "csv"})
    assert download["Content-Disposition"].startswith('attachment; filename="commission-')
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["2026-05", "2026-06", "2026-07"]


def test_the_portal_statement_is_the_owners_only(
    agent: Agent, seller_portal: Client, other_member: Any, months_of_sales: Agent
) -> None:
    from .helpers import verified_client

    # a seller of the agent is refused
    assert seller_portal.get(reverse("agent-portal:commission")).status_code == 403
    # another agent's owner sees only their own agent's figures
    other = verified_client(other_member)
    rows = list(
        csv.reader(
            io.StringIO(
                other.get(
                    reverse("agent-portal:commission"), {**MONTHS, "format": "csv"}
                ).content.decode("utf-8-sig")
            )
        )
    )
    assert all(row[2] == "0" for row in rows[1:])


def test_the_portal_statement_refuses_bad_input(owner_portal: Client) -> None:
    response = owner_portal.get(
        reverse("agent-portal:commission"), {"month_from": "2026-07", "month_to": "2026-05"}
    )
    assert response.status_code == 400
    assert "before the start" in response.content.decode()
