from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.receipts.views import csv_safe
from leb.topups.actions import do_create_order, do_fail_order, do_refund_order

pytestmark = pytest.mark.django_db


def rows_of(response: Any) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def failed_order(line: Any, plan: Any, owner: Any, now: Any) -> Any:
    order = do_create_order(
        line=line,
        channel="web",
        plan=plan,
        amount=None,
        promo_code="",
        idempotency_key=f"fail:{line.pk}:{now.isoformat()}",
        now=now,
    )
    order.customer = owner
    order.save(update_fields=["customer"])
    return do_fail_order(order, reason="declined", now=now)


@pytest.fixture
def mixed(
    line: Any, make_line: Any, owner: Any, make_order: Any, hkd_plan: Any, now: Any
) -> dict[str, Any]:
    """Four orders over four days on two of the owner's lines, one refunded
    and one failed, plus an outsider's order."""
    second_line = make_line(owner=owner)
    first = make_order(line, at=now)
    second = make_order(second_line, at=now + timedelta(days=1))
    refunded = make_order(line, at=now + timedelta(days=2))
    do_refund_order(refunded, reason="test", actor="staff", now=now + timedelta(days=2))
    failed = failed_order(line, hkd_plan, owner, now + timedelta(days=3))
    stranger = make_order(make_line(), customer=None, at=now)
    return {
        "first": first,
        "second": second,
        "refunded": refunded,
        "failed": failed,
        "stranger": stranger,
        "second_line": second_line,
    }


def test_history_lists_own_orders_newest_first(owner_client: Client, mixed: dict[str, Any]) -> None:
    # given four of the owner's orders and one of a stranger
    # when the owner opens the history
    response = owner_client.get(reverse("receipts:history"))

    # then theirs are listed, newest first, and the stranger's is not
    assert response.status_code == 200
    listed = list(response.context["page"].object_list)
    assert listed == [mixed["failed"], mixed["refunded"], mixed["second"], mixed["first"]]
    assert mixed["stranger"].receipt_number not in response.content.decode()


def test_outsider_sees_an_empty_history(outsider_client: Client, mixed: dict[str, Any]) -> None:
    # given orders that all belong to the owner
    # when an outsider opens their history and export
    page = outsider_client.get(reverse("receipts:history"))
    export = outsider_client.get(reverse("receipts:export_csv"))

    # then nothing of the owner's shows up
    assert list(page.context["page"].object_list) == []
    assert len(rows_of(export)) == 1


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"status": "refunded"}, ["refunded"]),
        ({"status": "failed"}, ["failed"]),
        ({"date_from": "2026-06-02", "date_to": "2026-06-03"}, ["refunded", "second"]),
        ({"date_to": "2026-06-01"}, ["first"]),
    ],
)
def test_history_filters(
    owner_client: Client, mixed: dict[str, Any], params: dict[str, str], expected: list[str]
) -> None:
    # given the owner's mixed orders (days are Hong Kong days)
    # when they filter
    response = owner_client.get(reverse("receipts:history"), params)

    # then only the matching ones are listed
    assert list(response.context["page"].object_list) == [mixed[name] for name in expected]


def test_history_filters_by_line(owner_client: Client, mixed: dict[str, Any]) -> None:
    # given orders on two lines
    # when the owner picks the second line
    response = owner_client.get(reverse("receipts:history"), {"line": mixed["second_line"].pk})

    # then only that line's order is listed
    assert list(response.context["page"].object_list) == [mixed["second"]]


def test_history_rejects_another_users_line(owner_client: Client, mixed: dict[str, Any]) -> None:
    # given the stranger's line id
    # when the owner tries to filter by it
    response = owner_client.get(reverse("receipts:history"), {"line": mixed["stranger"].line_id})

    # then the form refuses it and shows nothing extra
    assert response.context["form"].errors["line"]
    assert mixed["stranger"] not in list(response.context["page"].object_list)


def test_history_rejects_a_reversed_date_range(owner_client: Client, mixed: dict[str, Any]) -> None:
    # given a start date after the end date
    # when the owner filters
    response = owner_client.get(
        reverse("receipts:history"), {"date_from": "2026-06-05", "date_to": "2026-06-01"}
    )

    # then the form says so
    assert "The start date must not be after the end date." in response.content.decode()


def test_history_is_paginated(owner_client: Client, line: Any, make_order: Any, now: Any) -> None:
    # given more orders than fit on one page
    for i in range(21):
        make_order(line, at=now + timedelta(minutes=i))

    # when the owner opens page 2, keeping a filter
    response = owner_client.get(reverse("receipts:history"), {"status": "fulfilled", "page": "2"})

    # then the oldest is alone on page 2 and the pager keeps the filter
    assert len(response.context["page"].object_list) == 1
    assert "status=fulfilled&amp;page=1" in response.content.decode()


def test_history_query_budget(
    owner_client: Client, line: Any, make_order: Any, now: Any, django_assert_max_num_queries: Any
) -> None:
    # given many orders
    for i in range(15):
        make_order(line, at=now + timedelta(minutes=i))

    # when the owner opens the history
    # then the query count does not grow with the rows
    with django_assert_max_num_queries(8):
        response = owner_client.get(reverse("receipts:history"))
    assert len(response.context["page"].object_list) == 15


def test_csv_export_has_the_filtered_rows(owner_client: Client, mixed: dict[str, Any]) -> None:
    # given the owner's mixed orders
    # when they export the refunded ones
    response = owner_client.get(reverse("receipts:export_csv"), {"status": "refunded"})

    # then the CSV holds exactly that row, UTF-8 with a BOM
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    header, *rows = rows_of(response)
    assert header == [
        "Receipt number",
        "Date",
        "Number",
        "Plan",
        "Price",
        "Currency",
        "Status",
        "Payment",
    ]
    refunded = mixed["refunded"]
    assert rows == [
        [
            refunded.receipt_number,
            "2026-06-03 12:00",
            "'" + "+852 " + refunded.line.msisdn[4:8] + " " + refunded.line.msisdn[8:],
            "HK$50 / 180 days",
            "50.00",
            "HKD",
            "Refunded",
            "Test payment (sandbox)",
        ]
    ]


def test_csv_export_in_chinese_keeps_chinese_plan_names(
    owner_client: Client, mixed: dict[str, Any]
) -> None:
    # given the owner reads in Simplified Chinese
    owner_client.cookies["django_language"] = "zh-hans"

    # when they export
    rows = rows_of(owner_client.get(reverse("receipts:export_csv")))

    # then the plan names survive the UTF-8 round trip
    assert [row[3] for row in rows[1:]] == ["50港元 / 180天"] * 4


def test_csv_export_neutralises_formulas(
    owner_client: Client, line: Any, make_order: Any, hkd_plan: Any
) -> None:
    # given a plan whose name a spreadsheet would run as a formula
    hkd_plan.name_en = '=HYPERLINK("http://evil.example","x")'
    hkd_plan.save()
    make_order(line)

    # when the owner exports
    rows = rows_of(owner_client.get(reverse("receipts:export_csv")))

    # then the cell is text, not a formula
    assert rows[1][3] == "'" + hkd_plan.name_en


@pytest.mark.parametrize(
    "value,expected",
    [
        ("=1+1", "'=1+1"),
        ("+852", "'+852"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("2026-0000001", "2026-0000001"),
        ("", ""),
        (None, ""),
    ],
)
def test_csv_safe(value: Any, expected: str) -> None:
    # given a cell value / when it is made safe / then formulas become text
    assert csv_safe(value) == expected
