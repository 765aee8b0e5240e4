"""Each dataset's file: columns, rows, money as decimal amounts with their
currency, times in the operator's time zone, Chinese text read back from
CSV and XLSX, the list's filters honoured, and text that a spreadsheet would
run as a formula written as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook

from leb.exports.actions import ExportRefused
from leb.exports.files import path_of
from leb.exports.models import ExportJob, ExportStatus
from leb.ledger.models import Transfer
from leb.testing import topup
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db


def csv_rows(job: ExportJob) -> list[list[str]]:
    path = path_of(job.file_name)
    assert path is not None
    raw = path.read_bytes()
    # UTF-8 with a byte-order mark, so Excel reads Chinese correctly
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def xlsx_rows(job: ExportJob) -> tuple[list[tuple[Any, ...]], Any]:
    path = path_of(job.file_name)
    assert path is not None
    sheet = load_workbook(path).active
    return [tuple(cell.value for cell in row) for row in sheet.iter_rows()], sheet


def by_heading(rows: list[Any]) -> list[dict[str, Any]]:
    headings = [str(h) for h in rows[0]]
    return [dict(zip(headings, row, strict=True)) for row in rows[1:]]


def test_orders_as_csv_have_every_column_decimal_money_and_hong_kong_times(
    export: Callable[..., ExportJob],
    support: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    ledger_ok: Callable[[], None],
) -> None:
    # given two completed top-ups (04:00 UTC is noon in Hong Kong)
    first = topup(make_line(), hkd_plan, now=now)
    second = topup(make_line(), hkd_plan, now=now + timedelta(hours=1))
    ledger_ok()

    # when support exports the orders as CSV
    job = export(support, "orders", "csv")

    # then the job is done and the file has a heading row and one row per order
    assert job.status == ExportStatus.DONE
    assert (job.rows_done, job.rows_total) == (2, 2)
    rows = csv_rows(job)
    assert rows[0][:4] == [
        "Reference",
        "Receipt number",
        "Created (Asia/Hong_Kong)",
        "Phone number",
    ]
    records = by_heading(rows)
    assert [r["Reference"] for r in records] == [str(first.public_id), str(second.public_id)]
    one = records[0]
    assert one["Receipt number"] == first.receipt_number
    assert one["Created (Asia/Hong_Kong)"] == "2026-06-01 12:00:00"
    assert one["Price"] == "50.00"
    assert one["Currency"] == "HKD"
    assert one["Plan"] == "HK$50 / 180 days"
    assert one["Status"] == "Completed"
    # (a leading + would start a formula: CSV keeps it as text after an apostrophe)
    assert one["Phone number"] == "'" + first.line.msisdn
    assert records[1]["Completed (Asia/Hong_Kong)"] == "2026-06-01 13:00:00"
    # and the job knows its file by size and hash
    path = path_of(job.file_name)
    assert path is not None and job.file_size == path.stat().st_size
    import hashlib

    assert job.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_orders_as_xlsx_read_back_with_chinese_text_numbers_and_local_times(
    export: Callable[..., ExportJob],
    support: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given a completed top-up, and a member of staff working in Simplified Chinese
    order = topup(make_line(), hkd_plan, now=now)
    TopUpOrder.objects.filter(pk=order.pk).update(failure_reason="客户要求保号")

    # when they export the orders as XLSX
    from django.utils import translation

    with translation.override("zh-hans"):
        job = export(support, "orders", "xlsx")

    # then the workbook reads back with the Chinese plan name and text,
    # the price as a number formatted with two decimals, and the local time
    rows, sheet = xlsx_rows(job)
    assert job.language == "zh-hans"
    assert len(rows) == 2
    values = dict(zip([c.key for c in _orders_columns()], rows[1], strict=True))
    assert values["plan"] == "50港元 / 180天"
    assert values["failure_reason"] == "客户要求保号"
    assert values["price"] == 50 and values["currency"] == "HKD"
    assert values["created_at"] == datetime(2026, 6, 1, 12, 0)
    assert values["refund_due"] is False
    price_cell = sheet.cell(row=2, column=[c.key for c in _orders_columns()].index("price") + 1)
    assert price_cell.number_format == "#,##0.00"
    assert price_cell.data_type == "n"


def _orders_columns() -> Any:
    from leb.exports.registry import registry

    dataset = registry.get("orders")
    assert dataset is not None
    return dataset.columns


def test_orders_export_holds_exactly_the_rows_of_the_lists_filters(
    export: Callable[..., ExportJob],
    support: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given a web top-up, an IVR top-up a day later, and an unpaid order
    from leb.topups.actions import do_create_order

    web = topup(make_line(), hkd_plan, now=now)
    ivr = topup(make_line(), hkd_plan, now=now + timedelta(days=1), channel="ivr")
    do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="unpaid-1", now=now
    )

    def references(job: ExportJob) -> list[str]:
        return [r["Reference"] for r in by_heading(csv_rows(job))]

    # when exporting with the list's filters, then only matching rows are written
    assert references(export(support, "orders", status__exact="fulfilled")) == [
        str(web.public_id),
        str(ivr.public_id),
    ]
    assert references(export(support, "orders", channel__exact="ivr")) == [str(ivr.public_id)]
    # the date filter as the list writes it (the operator's midnight)
    day = export(
        support,
        "orders",
        fulfilled_at__gte="2026-06-02 00:00:00+08:00",
        fulfilled_at__lt="2026-06-03 00:00:00+08:00",
    )
    assert references(day) == [str(ivr.public_id)]
    # the date hierarchy and the search box
    assert len(references(export(support, "orders", created_at__year="2026"))) == 3
    assert references(export(support, "orders", q=ivr.line.msisdn[-8:])) == [str(ivr.public_id)]
    assert references(export(support, "orders", status__exact="pending_payment", q="nothing")) == []


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"plan__code": "hk-50"}, "The filter plan__code cannot be exported"),
        ({"status__exact": "lost"}, "Filter status"),
        ({"fulfilled_at__gte": "yesterday"}, "Filter completed"),
    ],
)
def test_a_filter_the_dataset_cannot_honour_is_refused_and_nothing_is_written(
    support: Any, filters: dict[str, str], message: str
) -> None:
    from leb.audit.models import AuditEntry

    entries = AuditEntry.objects.count()
    # when support asks for an export with a filter it cannot honour
    with pytest.raises(ExportRefused) as refused:
        from leb.exports.actions import do_request_export

        do_request_export(support, "orders", "csv", filters)
    # then it is refused in words, with no job and no audit entry
    assert message in str(refused.value)
    assert not ExportJob.objects.exists()
    assert AuditEntry.objects.count() == entries


def test_receipts_are_the_completed_and_refunded_orders_only(
    export: Callable[..., ExportJob],
    support: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given a completed top-up and an unpaid order
    from leb.topups.actions import do_create_order

    done = topup(make_line(), hkd_plan, now=now)
    do_create_order(line=make_line(), channel="web", plan=hkd_plan, idempotency_key="u-2", now=now)

    # when support exports receipts
    records = by_heading(csv_rows(export(support, "receipts")))

    # then there is one receipt, with what was bought and what was paid
    assert len(records) == 1
    receipt = records[0]
    assert receipt["Receipt number"] == done.receipt_number
    assert receipt["Amount paid"] == "50.00"
    assert receipt["What was bought"] == "HK$50 / 180 days"
    assert receipt["Days added"] == "180"
    assert receipt["Completed (Asia/Hong_Kong)"] == "2026-06-01 12:00:00"


def test_the_ledger_has_one_row_per_leg_with_its_transfer_group(
    export: Callable[..., ExportJob],
    finance: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    ledger_ok: Callable[[], None],
) -> None:
    # given one completed top-up (several legs), the books in balance
    topup(make_line(), hkd_plan, now=now)
    ledger_ok()
    legs = list(Transfer.objects.select_related("group").order_by("pk"))
    assert len(legs) >= 2

    # when finance exports the ledger as XLSX
    rows, _sheet = xlsx_rows(export(finance, "ledger", "xlsx"))

    # then each leg is a row with its group, accounts and decimal amount
    records = by_heading(rows)
    assert [r["Leg"] for r in records] == [leg.pk for leg in legs]
    first = records[0]
    assert first["Transfer group"] == legs[0].group_id
    assert first["Idempotency key"] == legs[0].group.idempotency_key
    assert first["Debit account"] == legs[0].debit_account.code
    assert first["Amount"] == Decimal(legs[0].amount) / 100
    assert first["Currency"] == "HKD"
    assert first["Posted (Asia/Hong_Kong)"] == datetime(2026, 6, 1, 12, 0)

    # and the transfer list's filters narrow it
    code = legs[0].code
    narrowed = by_heading(csv_rows(export(finance, "ledger", code__exact=code)))
    assert {r["Code"] for r in narrowed} == {code}
    assert not by_heading(csv_rows(export(finance, "ledger", currency__exact="GBP")))


def test_agents_statements_open_with_the_balance_and_run_through_the_period(
    export: Callable[..., ExportJob],
    finance: Any,
    make_agent: Callable[..., Any],
    now: datetime,
) -> None:
    # given an agent funded once before the period and twice in it, and
    # another agent outside the list's filter
    agent = make_agent(deposits=(10_000,), at=now - timedelta(days=40))
    from leb.agents.actions import do_approve_deposit, do_record_deposit
    from leb.agents.models import Agent

    staff = list(type(finance).objects.filter(is_superuser=True)[:2])
    for amount, ref in ((2_500, "IN-1"), (1_000, "IN-2")):
        recorded = do_record_deposit(
            agent, amount=amount, currency="HKD", bank_reference=ref, staff=staff[0], now=now
        )
        do_approve_deposit(recorded, staff=staff[1], now=now)
    other = make_agent(deposits=(500,), currency="GBP", display_name="London")
    assert Agent.objects.count() == 2

    # when finance exports the statements of the HKD agents for June
    job = export(
        finance,
        "agent_statements",
        "xlsx",
        currency__exact="HKD",
        date_from="2026-06-01",
        date_to="2026-06-30",
    )
    rows, _sheet = xlsx_rows(job)
    records = by_heading(rows)

    # then the agent's opening balance comes first, then each movement with
    # the balance after it, in Chinese as the agent's name was given
    assert {r["Agent"] for r in records} == {agent.code}
    assert other.code not in {r["Agent"] for r in records}
    assert records[0]["Movement"] == "Opening balance"
    assert records[0]["Balance after"] == 100
    assert records[0]["Agent name"] == "九龍電話"
    assert [r["Amount"] for r in records[1:]] == [25, 10]
    assert [r["Balance after"] for r in records[1:]] == [125, 135]
    assert job.rows_total == 3


def test_an_agents_statement_period_is_checked(finance: Any) -> None:
    from leb.exports.actions import do_request_export

    with pytest.raises(ExportRefused) as refused:
        do_request_export(
            finance, "agent_statements", "csv", {"date_from": "2026-06-30", "date_to": "2026-06-01"}
        )
    assert "The period must end on or after its first day" in str(refused.value)
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_text_a_spreadsheet_would_run_as_a_formula_is_written_as_text(
    export: Callable[..., ExportJob],
    support: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    file_format: str,
) -> None:
    # given orders whose text starts like a formula
    dangerous = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx"]
    for text in dangerous:
        order = topup(make_line(), hkd_plan, now=now)
        TopUpOrder.objects.filter(pk=order.pk).update(failure_reason=text)

    # when they are exported
    job = export(support, "orders", file_format)

    # then in CSV each is the same text after an apostrophe; in XLSX each is a
    # text cell with Excel's apostrophe (quote prefix), never a formula
    if file_format == "csv":
        written = [r["Reason"] for r in by_heading(csv_rows(job))]
        assert written == ["'" + text for text in dangerous]
    else:
        rows, sheet = xlsx_rows(job)
        column = list(rows[0]).index("Reason") + 1
        cells = [sheet.cell(row=n, column=column) for n in range(2, len(rows) + 1)]
        # (XML reads a lone carriage return back as a line feed)
        assert [cell.value for cell in cells] == [t.replace("\r", "\n") for t in dangerous]
        assert all(cell.data_type == "s" and cell.quotePrefix for cell in cells)
        assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_chunked_reads_write_every_row_once_in_order(
    export: Callable[..., ExportJob],
    finance: Any,
    make_line: Callable[..., Any],
    make_agent: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given three top-ups (several legs each) and an agent with three deposits
    for _ in range(3):
        topup(make_line(), hkd_plan, now=now)
    agent = make_agent(deposits=(100, 200, 300))
    legs = list(Transfer.objects.order_by("pk").values_list("pk", flat=True))

    # when both are exported a few rows at a time
    ledger = export(finance, "ledger", chunk_size=2)
    statement = export(
        finance,
        "agent_statements",
        chunk_size=1,
        q=agent.code,
        date_from="2026-06-01",
        date_to="2026-06-01",
    )

    # then every leg is written once, in order, and the progress is complete
    assert [int(r["Leg"]) for r in by_heading(csv_rows(ledger))] == legs
    assert (ledger.rows_done, ledger.rows_total) == (len(legs), len(legs))
    # and the statement's running balance goes through all three deposits
    balances = [r["Balance after"] for r in by_heading(csv_rows(statement))]
    assert balances == ["0.00", "1.00", "3.00", "6.00"]
    assert statement.rows_total == 4
