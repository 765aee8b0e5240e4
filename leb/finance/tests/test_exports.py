"""The settlement exports: the runs and the mismatches as files, with their
columns, money as decimal amounts beside the currency, times in the operator's
time zone, exactly the rows their back-office list shows for the same
filters, and refused (with nothing written) when a filter cannot be honoured
or the member of staff's role does not include them."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db.models import Q
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from leb.audit.models import AuditEntry
from leb.backoffice.roles import ADMIN, FINANCE, SUPPORT
from leb.exports.actions import ExportRefused, do_request_export, do_run_export
from leb.exports.files import exports_dir, path_of
from leb.exports.models import ExportJob, ExportStatus
from leb.finance.actions import do_reconcile_day
from leb.finance.models import Mismatch, MismatchKind, SettlementRun

from .conftest import DAY

pytestmark = pytest.mark.django_db

EMPTY_DAY = date(2026, 5, 29)
DAY_BEFORE = date(2026, 5, 30)
RECONCILED = "Reconciled (Asia/Hong_Kong)"


@pytest.fixture(autouse=True)
def _private_exports_dir(settings: Any, tmp_path: Any) -> None:
    settings.EXPORTS_DIR = str(tmp_path / "exports")


def _staff(django_user_model: Any, role: str, name: str) -> Any:
    user = django_user_model.objects.create_user(name, password="x-unused-9", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def finance(django_user_model: Any) -> Any:
    return _staff(django_user_model, FINANCE, "fay-finance")


@pytest.fixture
def support(django_user_model: Any) -> Any:
    return _staff(django_user_model, SUPPORT, "sue-support")


@pytest.fixture
def admin_staff(django_user_model: Any) -> Any:
    return _staff(django_user_model, ADMIN, "ada-admin")


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def export(now: datetime) -> Callable[..., ExportJob]:
    """Request an export as `user` and run it as the worker would."""

    def run(user: Any, dataset: str, file_format: str = "csv", **filters: Any) -> ExportJob:
        job = do_request_export(user, dataset, file_format, filters, now=now)
        do_run_export(job.pk)
        job.refresh_from_db()
        return job

    return run


@pytest.fixture
def three_days(
    clean_day: list[Any],
    pay: Callable[..., Any],
    at_hour: Callable[[float], datetime],
    ledger_ok: Callable[[], None],
) -> dict[str, Any]:
    """Three reconciled days of the sandbox: 29 May with nothing booked (a run
    without a currency), 30 May with a capture 2 HKD short, and 31 May (a
    clean day) with a capture 1 HKD short and one never settled."""
    before = pay(at_hour(-3), captured_amount=4800)  # 30 May, 21:00 in Hong Kong
    short = pay(at_hour(13), captured_amount=4900)
    lost = pay(at_hour(15), settled=False)
    for day in (EMPTY_DAY, DAY_BEFORE, DAY):
        do_reconcile_day(day, "sandbox", actor="staff:fin")
    ledger_ok()
    return {"before": before, "short": short, "lost": lost}


def csv_rows(job: ExportJob) -> list[list[str]]:
    path = path_of(job.file_name)
    assert path is not None
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def xlsx_rows(job: ExportJob) -> tuple[list[tuple[Any, ...]], Any]:
    path = path_of(job.file_name)
    assert path is not None
    sheet = load_workbook(path).active
    return [tuple(cell.value for cell in row) for row in sheet.iter_rows()], sheet


def by_heading(rows: list[Any]) -> list[dict[str, Any]]:
    headings = [str(h) for h in rows[0]]
    return [dict(zip(headings, row, strict=True)) for row in rows[1:]]


RUN_HEADINGS = [
    "Day",
    "Provider",
    "Currency",
    "Captured per leb",
    "Refunded per leb",
    "Paid, awaiting fulfilment, per leb",
    "Captures per leb",
    "Refunds per leb",
    "Captured per provider",
    "Refunded per provider",
    "Not yet available at the provider",
    "Provider fees",
    "Captures per provider",
    "Refunds per provider",
    "Mismatches",
    RECONCILED,
    "Reconciled by",
]

MISMATCH_HEADINGS = [
    "Kind",
    "Day",
    "Provider",
    "Currency",
    "Order reference",
    "Payment attempt",
    "Provider reference",
    "Provider transaction",
    "Amount per leb",
    "Amount per provider",
    "Detail",
    "Settlement run",
]


# --- The runs ------------------------------------------------------------------------


def test_settlement_runs_as_csv_have_both_sides_in_decimal_money_and_local_times(
    export: Callable[..., ExportJob], finance: Any, three_days: dict[str, Any]
) -> None:
    # when finance exports the settlement runs as CSV
    job = export(finance, "settlement_runs", "csv")

    # then there is one row per day, provider and currency, in the order
    # they were reconciled, with every column
    assert job.status == ExportStatus.DONE
    assert (job.rows_done, job.rows_total) == (3, 3)
    rows = csv_rows(job)
    assert rows[0] == RUN_HEADINGS
    empty, before, day = by_heading(rows)
    assert [r["Day"] for r in (empty, before, day)] == ["2026-05-29", "2026-05-30", "2026-05-31"]
    # 31 May: five captures of HK$50 in leb's books (one never settled is
    # leb's pending), the gateway one dollar short, and a refund on both sides
    assert day == {
        "Day": "2026-05-31",
        "Provider": "sandbox",
        "Currency": "HKD",
        "Captured per leb": "200.00",
        "Refunded per leb": "50.00",
        "Paid, awaiting fulfilment, per leb": "0.00",
        "Captures per leb": "4",
        "Refunds per leb": "1",
        "Captured per provider": "249.00",
        "Refunded per provider": "50.00",
        "Not yet available at the provider": "0.00",
        "Provider fees": "0.00",
        "Captures per provider": "5",
        "Refunds per provider": "1",
        "Mismatches": "2",
        # reconciled on 1 June at 04:00 UTC: noon in Hong Kong
        RECONCILED: "2026-06-01 12:00:00",
        "Reconciled by": "staff:fin",
    }
    # and the figures are the run's own minor units in currency units
    run = SettlementRun.objects.get(date=DAY)
    assert (run.leb_captured, run.provider_captured) == (20000, 24900)
    assert before["Captured per provider"] == "48.00" and before["Mismatches"] == "1"
    # a day on which nothing was booked has no currency, so no amounts, only counts
    assert empty["Currency"] == "" and empty["Captured per leb"] == ""
    assert empty["Provider fees"] == "" and empty["Captures per leb"] == "0"


def test_settlement_runs_as_xlsx_read_back_as_dates_numbers_and_local_times(
    export: Callable[..., ExportJob], admin_staff: Any, three_days: dict[str, Any]
) -> None:
    # when admin exports the runs of 31 May as XLSX
    job = export(admin_staff, "settlement_runs", "xlsx", date__gte="2026-05-31")

    # then the workbook has the heading row and the run, with a date cell,
    # amounts as numbers with two decimals and the local time
    rows, sheet = xlsx_rows(job)
    assert list(rows[0]) == RUN_HEADINGS
    (run,) = by_heading(rows)
    assert run["Day"] == datetime(2026, 5, 31)
    assert sheet.cell(row=2, column=1).number_format == "yyyy-mm-dd"
    assert run["Captured per leb"] == 200 and run["Captured per provider"] == 249
    captured = sheet.cell(row=2, column=RUN_HEADINGS.index("Captured per leb") + 1)
    assert captured.data_type == "n" and captured.number_format == "#,##0.00"
    assert run["Mismatches"] == 2 and run["Currency"] == "HKD"
    assert run[RECONCILED] == datetime(2026, 6, 1, 12, 0)


def _listed_runs(client: Client, params: dict[str, str]) -> list[str]:
    response = client.get(reverse("admin:finance_settlementrun_changelist"), params)
    assert response.status_code == 200
    return sorted(f"{run.date} {run.currency}" for run in response.context["cl"].queryset)


def _exported_runs(job: ExportJob) -> list[str]:
    assert job.status == ExportStatus.DONE, job.error
    return sorted(f"{r['Day']} {r['Currency']}" for r in by_heading(csv_rows(job)))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["2026-05-29 ", "2026-05-30 HKD", "2026-05-31 HKD"]),
        # the list's filter on the day ("Past 7 days" and the like)
        ({"date__gte": "2026-05-30", "date__lt": "2026-05-31"}, ["2026-05-30 HKD"]),
        # the date hierarchy
        ({"date__year": "2026", "date__month": "5", "date__day": "29"}, ["2026-05-29 "]),
        ({"date__year": "2025"}, []),
        # where reconciling a day sends the list back to
        ({"date": "2026-05-31"}, ["2026-05-31 HKD"]),
        (
            {"provider__exact": "sandbox", "currency__exact": "HKD"},
            ["2026-05-30 HKD", "2026-05-31 HKD"],
        ),
        ({"provider__exact": "stripe"}, []),
        # the list's choice of the runs without a currency (nothing booked)
        ({"currency__exact": ""}, ["2026-05-29 "]),
        # the list's ordering and page do not change which rows it holds
        ({"o": "-3", "date__month": "5"}, ["2026-05-29 ", "2026-05-30 HKD", "2026-05-31 HKD"]),
    ],
)
def test_the_runs_export_holds_exactly_the_rows_the_run_list_shows(
    export: Callable[..., ExportJob],
    finance: Any,
    three_days: dict[str, Any],
    filters: dict[str, str],
    expected: list[str],
) -> None:
    # when finance filters the run list and exports with the same parameters
    listed = _listed_runs(signed_in(finance), filters)
    exported = _exported_runs(export(finance, "settlement_runs", "csv", **filters))

    # then the file holds exactly the list's rows
    assert listed == expected
    assert exported == listed


# --- The mismatches ------------------------------------------------------------------


def test_settlement_mismatches_as_csv_have_kind_day_references_and_both_amounts(
    export: Callable[..., ExportJob], finance: Any, three_days: dict[str, Any]
) -> None:
    # when finance exports the mismatches as CSV
    job = export(finance, "settlement_mismatches", "csv")

    # then there is one row per mismatch with every column
    rows = csv_rows(job)
    assert rows[0] == MISMATCH_HEADINGS
    records = by_heading(rows)
    assert (job.rows_done, job.rows_total) == (3, 3)
    by_attempt = {r["Payment attempt"]: r for r in records}
    short, lost, before = three_days["short"], three_days["lost"], three_days["before"]
    mismatch = Mismatch.objects.get(attempt=short)
    assert by_attempt[str(short.pk)] == {
        "Kind": "Amount differs",
        "Day": "2026-05-31",
        "Provider": "sandbox",
        "Currency": "HKD",
        "Order reference": str(short.order.public_id),
        "Payment attempt": str(short.pk),
        "Provider reference": mismatch.reference,
        "Provider transaction": mismatch.provider_transaction,
        "Amount per leb": "50.00",
        "Amount per provider": "49.00",
        "Detail": mismatch.detail,
        "Settlement run": str(mismatch.run_id),
    }
    # a capture never settled has no amount in leb's books: the cell is empty
    never = by_attempt[str(lost.pk)]
    assert never["Kind"] == "Paid, not fulfilled"
    assert (never["Amount per leb"], never["Amount per provider"]) == ("", "50.00")
    assert never["Order reference"] == str(lost.order.public_id)
    assert by_attempt[str(before.pk)]["Day"] == "2026-05-30"
    assert by_attempt[str(before.pk)]["Amount per provider"] == "48.00"


def test_settlement_mismatches_as_xlsx_read_back_in_the_requesters_language(
    export: Callable[..., ExportJob], finance: Any, three_days: dict[str, Any]
) -> None:
    from django.utils import translation

    # when a member of finance working in Traditional Chinese exports one
    # kind of mismatch as XLSX
    with translation.override("zh-hant"):
        job = export(finance, "settlement_mismatches", "xlsx", kind__exact="amount_differs")

    # then the kind is in their language, the amounts numbers, the day a date
    rows, sheet = xlsx_rows(job)
    assert job.language == "zh-hant"
    assert len(rows) == 3
    values = sorted(rows[1:], key=lambda row: row[1])
    with translation.override("zh-hant"):
        label = str(MismatchKind.AMOUNT_DIFFERS.label)
    assert label != "Amount differs"
    assert [row[0] for row in values] == [label, label]
    assert [row[1] for row in values] == [datetime(2026, 5, 30), datetime(2026, 5, 31)]
    assert [(row[8], row[9]) for row in values] == [(50, 48), (50, 49)]
    leb_amount = sheet.cell(row=2, column=MISMATCH_HEADINGS.index("Amount per leb") + 1)
    assert leb_amount.data_type == "n" and leb_amount.number_format == "#,##0.00"


def _mismatch_key(kind: str, attempt: Any, day: Any) -> str:
    return f"{kind} {attempt} {day}"


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"kind__exact": "paid_not_fulfilled"},
        {"kind__exact": "refund_differs"},
        {"run__provider__exact": "sandbox"},
        {"run__provider__exact": "stripe"},
        {"run__date__gte": "2026-05-31", "run__date__lt": "2026-06-01"},
        {"run__date__lt": "2026-05-31"},
        {"kind__exact": "amount_differs", "o": "2.-1", "p": "0"},
    ],
)
def test_the_mismatches_export_holds_exactly_the_rows_the_mismatch_list_shows(
    export: Callable[..., ExportJob],
    finance: Any,
    three_days: dict[str, Any],
    filters: dict[str, str],
) -> None:
    # when finance filters the mismatch list and exports with the same parameters
    response = signed_in(finance).get(reverse("admin:finance_mismatch_changelist"), filters)
    assert response.status_code == 200
    listed = sorted(
        _mismatch_key(m.get_kind_display(), m.attempt_id, m.run.date)
        for m in response.context["cl"].queryset
    )
    job = export(finance, "settlement_mismatches", "csv", **filters)

    # then the file holds exactly the list's rows
    exported = sorted(
        _mismatch_key(r["Kind"], r["Payment attempt"], r["Day"]) for r in by_heading(csv_rows(job))
    )
    assert exported == listed
    assert job.rows_total == len(listed)


def test_the_mismatch_export_follows_a_runs_link_and_the_lists_exact_search(
    export: Callable[..., ExportJob], finance: Any, three_days: dict[str, Any]
) -> None:
    client = signed_in(finance)
    url = reverse("admin:finance_mismatch_changelist")
    run = SettlementRun.objects.get(date=DAY)
    short = Mismatch.objects.get(attempt=three_days["short"])
    order_reference = str(three_days["lost"].order.public_id)
    for filters, expected in (
        # the run list's mismatch count links to the run's mismatches
        ({"run__id__exact": str(run.pk)}, 2),
        # the search matches a whole reference or order reference (as the
        # list does), in any case, never a part of one
        ({"q": short.reference.upper()}, 1),
        ({"q": short.reference[:-2]}, 0),
        ({"q": order_reference}, 1),
    ):
        # when finance opens the list with the parameters and exports with them
        listed = {m.pk for m in client.get(url, filters).context["cl"].queryset}
        rows = by_heading(csv_rows(export(finance, "settlement_mismatches", "csv", **filters)))
        # then both hold the same mismatches
        assert len(listed) == len(rows) == expected, filters
        assert {r["Payment attempt"] for r in rows} == {
            str(m.attempt_id) for m in Mismatch.objects.filter(pk__in=listed)
        }


def test_an_exports_search_reads_the_lists_search_field_prefixes_as_the_admin_does() -> None:
    from leb.common.exporting import search_lookup, search_q

    # "=" a whole value, "^" its start, nothing any part (case ignored, as the admin)
    assert search_lookup("=reference") == "reference__iexact"
    assert search_lookup("^reference") == "reference__istartswith"
    assert search_lookup("reference") == "reference__icontains"
    # and every word of the search must match one of the fields
    query = search_q(("=reference", "^detail"), 'sbx_1 "two words"')
    assert str(query) == str(
        (Q(reference__iexact="sbx_1") | Q(detail__istartswith="sbx_1"))
        & (Q(reference__iexact="two words") | Q(detail__istartswith="two words"))
    )


# --- The links, refusals and permissions --------------------------------------------


def test_the_settlement_lists_offer_their_export_with_the_lists_filters(
    finance: Any, three_days: dict[str, Any]
) -> None:
    client = signed_in(finance)
    request_url = reverse("admin:exports_exportjob_request")

    # when finance filters the run list by the date hierarchy
    runs = client.get(
        reverse("admin:finance_settlementrun_changelist"), {"date__year": "2026"}
    ).content.decode()
    # then its Export link carries the filter to the export form
    assert f"{request_url}?dataset=settlement_runs&amp;date__year=2026" in runs
    assert "Export: Settlement runs" in runs
    form = client.get(request_url, {"dataset": "settlement_runs", "date__year": "2026"})
    assert form.status_code == 200
    assert 'name="date__year" value="2026"' in form.content.decode()

    # and so does the mismatch list's, with its kind filter
    mismatches = client.get(
        reverse("admin:finance_mismatch_changelist"), {"kind__exact": "amount_differs"}
    ).content.decode()
    assert f"{request_url}?dataset=settlement_mismatches&amp;kind__exact=amount_differs" in (
        mismatches
    )


def test_the_runs_without_a_currency_are_exported_as_the_list_shows_them(
    finance: Any, three_days: dict[str, Any]
) -> None:
    client = signed_in(finance)
    request_url = reverse("admin:exports_exportjob_request")
    # when finance lists the runs without a currency and follows the Export link
    listing = client.get(reverse("admin:finance_settlementrun_changelist"), {"currency__exact": ""})
    assert f"{request_url}?dataset=settlement_runs&amp;currency__exact=" in listing.content.decode()
    form = client.get(request_url, {"dataset": "settlement_runs", "currency__exact": ""})
    assert 'name="currency__exact" value=""' in form.content.decode()
    client.post(request_url, {"dataset": "settlement_runs", "currency__exact": "", "format": "csv"})

    # then the job keeps the empty currency as a filter, and the file holds
    # only the run the list shows
    job = ExportJob.objects.get()
    assert job.filters == {"currency__exact": ""}
    do_run_export(job.pk)
    job.refresh_from_db()
    assert _exported_runs(job) == ["2026-05-29 "]


@pytest.mark.parametrize(
    ("dataset", "filters", "message"),
    [
        # the list takes any lookup on a run's own fields; the export only its filters
        ("settlement_runs", {"leb_captured__gt": "0"}, "The filter leb_captured__gt cannot"),
        ("settlement_runs", {"q": "sandbox"}, "The filter q cannot be exported"),
        ("settlement_runs", {"date__gte": "yesterday"}, "Filter day: Enter a valid date."),
        ("settlement_runs", {"date__year": "last"}, "Filter day: Enter a whole number."),
        ("settlement_mismatches", {"kind__exact": "lost"}, "Filter kind: Select a valid choice"),
        ("settlement_mismatches", {"run__currency__exact": "HKD"}, "run__currency__exact cannot"),
        ("settlement_mismatches", {"run__id__exact": "x"}, "Filter settlement run:"),
    ],
)
def test_a_filter_the_settlement_exports_cannot_honour_is_refused_and_nothing_is_written(
    finance: Any, three_days: dict[str, Any], dataset: str, filters: dict[str, str], message: str
) -> None:
    entries = AuditEntry.objects.count()
    # when finance asks for the export with a filter it cannot honour
    with pytest.raises(ExportRefused) as refused:
        do_request_export(finance, dataset, "csv", filters)
    # then it is refused in words, with no job and no audit entry
    assert message in str(refused.value)
    assert not ExportJob.objects.exists()
    assert AuditEntry.objects.count() == entries


def test_the_export_form_says_why_a_filter_cannot_be_exported(
    finance: Any, three_days: dict[str, Any]
) -> None:
    # when finance follows an Export link whose list has a lookup the export does not know
    response = signed_in(finance).get(
        reverse("admin:exports_exportjob_request"),
        {"dataset": "settlement_runs", "mismatch_count__gt": "0"},
    )
    # then the form says so, and nothing is written
    assert response.status_code == 400
    assert "The filter mismatch_count__gt cannot be exported" in response.content.decode()
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize("dataset", ["settlement_runs", "settlement_mismatches"])
def test_support_may_not_export_the_settlement_and_nothing_is_written(
    support: Any, three_days: dict[str, Any], dataset: str
) -> None:
    entries = AuditEntry.objects.count()
    # when support asks for a settlement export, by the action and on the page
    with pytest.raises(ExportRefused) as refused:
        do_request_export(support, dataset, "csv", {})
    page = signed_in(support).post(
        reverse("admin:exports_exportjob_request"), {"dataset": dataset, "format": "csv"}
    )
    # then both refuse in words, and no job, file or audit entry is written
    assert "your role does not include it" in str(refused.value)
    assert page.status_code == 403
    assert "your role does not include it" in page.content.decode()
    assert not ExportJob.objects.exists()
    assert AuditEntry.objects.count() == entries
    assert not exports_dir().exists() or not any(exports_dir().iterdir())
