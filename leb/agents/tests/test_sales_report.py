"""The sales and commission report: figures from the ledger that match a
hand-computed set of sales and a reversal, by agent and by day, the CSV
export, the permission and bad input."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from leb.agents.actions import do_create_agent_topup, do_reverse_agent_topup
from leb.agents.models import Agent, AgentTopUpStatus
from leb.agents.queries import balance
from leb.agents.reports import Figures, Period, agent_report, sales_report
from leb.audit.models import AuditEntry

pytestmark = pytest.mark.django_db
REPORT = "/ops/agents/agent/sales/"
RANGE = {"date_from": "2026-06-01", "date_to": "2026-06-02", "currency": "HKD"}


@pytest.fixture
def sales(
    make_agent: Callable[..., Agent],
    fund: Callable[[Agent, int], None],
    make_line: Callable[..., Any],
    hkd_plan: Any,
    approver: Any,
    now: datetime,
) -> dict[str, Agent]:
    """HK$50 plan (5,000). Agent A (10 % off: 4,500 wholesale, 500 commission)
    sells twice on 1 June (HK time) and once on 2 June, and one of its 1 June
    sales is reversed on 2 June. Agent B (20 % off: 4,000 and 1,000) sells once
    on 1 June. Agent C's sale fails (float too low) and a two-step hold is never
    confirmed: neither is a sale. A GBP agent is in another currency."""
    a = make_agent(display_name="Agent A")
    b = make_agent(display_name="Agent B", discount_percent=Decimal("20"))
    c = make_agent(display_name="Agent C")
    make_agent(display_name="London", region="GB", currency="GBP")
    for agent in (a, b):
        fund(agent, 100_000)
    fund(c, 1_000)
    lines = [make_line() for _i in range(6)]
    day2 = now + timedelta(hours=13)  # 2026-06-01 17:00 UTC is 2 June 01:00 in Hong Kong

    def sell(agent: Agent, ext: str, line: Any, at: datetime, **extra: Any) -> Any:
        return do_create_agent_topup(
            agent, external_id=ext, msisdn=line.msisdn, plan_code=hkd_plan.code, now=at, **extra
        ).topup

    first = sell(a, "A-1", lines[0], now)
    sell(a, "A-2", lines[1], now + timedelta(minutes=5))
    sell(a, "A-3", lines[2], day2)
    do_reverse_agent_topup(first, staff=approver, reason="sold by mistake", now=day2)
    sell(b, "B-1", lines[3], now)
    assert sell(c, "C-1", lines[4], now).status == AgentTopUpStatus.FAILED
    assert sell(a, "A-hold", lines[5], now, mode="two_step").status == AgentTopUpStatus.CREATED
    return {"a": a, "b": b, "c": c}


A = Figures(
    topups=3,
    wholesale=13_500,
    commission=1_500,
    reversals=1,
    reversed_wholesale=4_500,
    reversed_commission=500,
)
B = Figures(topups=1, wholesale=4_000, commission=1_000)


def test_the_report_adds_up_sales_and_the_reversal_per_agent(sales: dict[str, Agent]) -> None:
    # when
    report = sales_report(Period(date(2026, 6, 1), date(2026, 6, 2), "HKD"))

    # then: only agents with sales in HKD, with the hand-computed figures
    assert [(row.agent.code, row.figures) for row in report.rows] == [
        (code, figures) for code, figures in sorted([(sales["a"].code, A), (sales["b"].code, B)])
    ]
    assert report.totals == A + B
    assert (report.totals.retail, report.totals.net_retail) == (20_000, 15_000)
    assert (report.totals.net_wholesale, report.totals.net_commission) == (13_000, 2_000)
    # and they tie to the float: A's net wholesale is what left its float
    # (less the unconfirmed hold, which is reserved, not sold)
    assert balance(sales["a"]).available == 100_000 - A.net_wholesale - 4_500
    assert balance(sales["a"]).reserved == 4_500


def test_a_sale_counts_on_the_operators_day_and_a_reversal_when_it_is_posted(
    sales: dict[str, Agent],
) -> None:
    # when
    first_day = sales_report(Period(date(2026, 6, 1), date(2026, 6, 1), "HKD"))
    by_day = agent_report(sales["a"], Period(date(2026, 6, 1), date(2026, 6, 2), "HKD"))

    # then
    a_first_day = next(r.figures for r in first_day.rows if r.agent == sales["a"])
    assert a_first_day == Figures(topups=2, wholesale=9_000, commission=1_000)
    assert [(d.day, d.figures) for d in by_day.days] == [
        (date(2026, 6, 1), Figures(topups=2, wholesale=9_000, commission=1_000)),
        (
            date(2026, 6, 2),
            Figures(
                topups=1,
                wholesale=4_500,
                commission=500,
                reversals=1,
                reversed_wholesale=4_500,
                reversed_commission=500,
            ),
        ),
    ]
    assert by_day.totals == A


def test_the_day_drill_down_lists_each_sale_and_reversal(sales: dict[str, Agent]) -> None:
    # when
    report = agent_report(
        sales["a"], Period(date(2026, 6, 1), date(2026, 6, 2), "HKD"), date(2026, 6, 2)
    )

    # then
    code = sales["a"].code
    assert [
        (s.reference, s.kind, s.topup.external_id if s.topup else None) for s in report.sales
    ] == [
        (f"agent:{code}:A-3", "agent.sale", "A-3"),
        (f"agent:{code}:A-1:reversal", "reversal:agent.sale", "A-1"),
    ]
    assert report.sales[1].figures.reversed_retail == 5_000


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_with(django_user_model: Any) -> Callable[..., Any]:
    def make(*codenames: str) -> Any:
        user = django_user_model.objects.create_user(
            f"staff-{len(codenames)}", "s@example.com", "pw-staff-1234", is_staff=True
        )
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="agents", codename__in=codenames)
        )
        return user

    return make


def test_the_page_shows_the_figures_and_the_ledger_accounts(
    sales: dict[str, Agent], staff_with: Callable[..., Any]
) -> None:
    # given staff who may see agents and their sales, not a superuser
    client = signed_in(staff_with("view_agent", "view_agent_sales"))

    # when
    page = client.get(REPORT, RANGE)
    listing = client.get("/ops/agents/agent/")

    # then
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("HKD\xa0150.00", "HKD\xa0200.00", "HKD\xa0130.00", "HKD\xa015.00"):
        assert text in html
    assert "agent_float:&lt;code&gt;:HKD" in html
    assert "agent_commission:&lt;code&gt;:HKD" in html
    assert "London" not in html
    assert sales["c"].code not in html
    assert REPORT in listing.content.decode()


def test_the_agent_page_lists_days_and_the_chosen_days_sales(
    sales: dict[str, Agent], staff_with: Callable[..., Any]
) -> None:
    # given
    client = signed_in(staff_with("view_agent", "view_agent_sales"))
    code = sales["a"].code

    # when
    page = client.get(f"{REPORT}{code}/", {**RANGE, "day": "2026-06-02"})

    # then
    assert page.status_code == 200
    html = page.content.decode()
    assert "2026-06-01" in html and "2026-06-02" in html
    assert f"agent:{code}:A-1:reversal" in html
    assert f"agent:{code}:A-3" in html
    assert f"agent_float:{code}:HKD" in html


def test_staff_without_the_sales_permission_are_refused(
    sales: dict[str, Agent], staff_with: Callable[..., Any]
) -> None:
    # given staff who may see agents but not their sales
    client = signed_in(staff_with("view_agent"))

    # when
    pages = [
        client.get(REPORT, RANGE),
        client.get(f"{REPORT}{sales['a'].code}/", RANGE),
        client.get(REPORT, {**RANGE, "format": "csv"}),
    ]
    listing = client.get("/ops/agents/agent/")

    # then
    assert [p.status_code for p in pages] == [403, 403, 403]
    assert listing.status_code == 200
    assert REPORT not in listing.content.decode()
    assert not AuditEntry.objects.filter(action="agent.sales_report.export").exists()


def test_a_visitor_who_is_not_signed_in_goes_to_the_login_page(sales: dict[str, Agent]) -> None:
    # when
    page = Client().get(REPORT, RANGE)

    # then
    assert page.status_code == 302
    assert "/login/" in page["Location"]


def test_the_csv_has_a_row_per_agent_and_the_totals_and_is_audited(
    sales: dict[str, Agent], recorder: Any
) -> None:
    # given
    client = signed_in(recorder)

    # when
    response = client.get(REPORT, {**RANGE, "format": "csv"})

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "agent",
        "name",
        "currency",
        "top_ups",
        "retail",
        "wholesale",
        "commission",
        "reversals",
        "retail_reversed",
        "net_retail",
        "net_wholesale",
        "net_commission",
    ]
    a, b = sales["a"], sales["b"]
    expected = sorted(
        [
            [
                a.code,
                "Agent A",
                "HKD",
                "3",
                "15000",
                "13500",
                "1500",
                "1",
                "5000",
                "10000",
                "9000",
                "1000",
            ],
            [
                b.code,
                "Agent B",
                "HKD",
                "1",
                "5000",
                "4000",
                "1000",
                "0",
                "0",
                "5000",
                "4000",
                "1000",
            ],
        ]
    )
    assert rows[1:3] == expected
    assert rows[3] == [
        "total",
        "",
        "HKD",
        "4",
        "20000",
        "17500",
        "2500",
        "1",
        "5000",
        "15000",
        "13000",
        "2000",
    ]
    entry = AuditEntry.objects.get(action="agent.sales_report.export")
    assert entry.actor == "staff:fin-a"


def test_the_agent_csv_has_a_row_per_day(sales: dict[str, Agent], recorder: Any) -> None:
    # given
    client = signed_in(recorder)
    code = sales["a"].code

    # when
    response = client.get(f"{REPORT}{code}/", {**RANGE, "format": "csv"})

    # then
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert [row[:4] + row[-3:] for row in rows[1:]] == [
        ["2026-06-01", code, "HKD", "2", "10000", "9000", "1000"],
        ["2026-06-02", code, "HKD", "1", "0", "0", "0"],
        ["total", code, "HKD", "3", "10000", "9000", "1000"],
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"date_from": "2026-13-01"}, "Enter a date as YYYY-MM-DD"),
        ({"date_to": "yesterday"}, "Enter a date as YYYY-MM-DD"),
        ({"date_from": "2026-06-03"}, "The end date is before the start date."),
        ({"date_from": "2024-01-01"}, "Choose at most 366 days."),
        ({"currency": "XXX"}, "Select a valid choice."),
        ({"day": "2026-07-01"}, "The day is outside the range."),
    ],
)
def test_bad_input_is_a_clear_error_on_the_page(
    sales: dict[str, Agent], recorder: Any, query: dict[str, str], message: str
) -> None:
    # given
    client = signed_in(recorder)

    # when
    pages = [
        client.get(REPORT, {**RANGE, **query}),
        client.get(f"{REPORT}{sales['a'].code}/", {**RANGE, **query}),
        client.get(REPORT, {**RANGE, **query, "format": "csv"}),
    ]

    # then the form says what is wrong; nothing is computed or exported
    for page in pages:
        assert page.status_code == 200
        assert page["Content-Type"].startswith("text/html")
        assert message in page.content.decode()
        assert "Download as CSV" not in page.content.decode()


def test_an_unknown_agent_or_another_currency_is_not_a_server_error(
    sales: dict[str, Agent], recorder: Any
) -> None:
    # given
    client = signed_in(recorder)

    # when
    unknown = client.get(f"{REPORT}HK-NOSUCH/", RANGE)
    london = Agent.objects.get(currency="GBP")
    wrong_currency = client.get(f"{REPORT}{london.code}/", RANGE)

    # then
    assert unknown.status_code == 404
    assert wrong_currency.status_code == 200
    assert "This agent&#x27;s float is in GBP." in wrong_currency.content.decode()
