"""A settlement export in a browser: finance opens the mismatches of a run
from the run list, follows the list's Export link, asks for an Excel file
and downloads it once the worker has written it."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from openpyxl import load_workbook

from leb.common import clock
from leb.exports.actions import do_run_export
from leb.exports.models import ExportJob, ExportStatus
from leb.finance.actions import do_reconcile_day, yesterday
from leb.finance.models import SettlementRun
from leb.finance.reconcile import operator_zone
from leb.payments.models import PaymentAttempt
from leb.payments.providers import sandbox
from leb.topups.actions import do_create_order

from .helpers import ARTIFACTS, shot

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page: Any, live_server: Any, user: Any) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def test_finance_exports_a_runs_mismatches_and_downloads_the_workbook(
    page_for: Any,
    live_server: Any,
    make_line: Any,
    hkd_plan: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    # given yesterday reconciled with two captures leb never settled, and
    # finance signed in, working in Traditional Chinese
    settings.EXPORTS_DIR = str(tmp_path / "exports")
    day = yesterday()
    for hour in (10, 14):
        at = datetime.combine(day, time(hour), tzinfo=operator_zone())
        order = do_create_order(
            line=make_line(at=at - timedelta(days=1)),
            channel="web",
            plan=hkd_plan,
            idempotency_key=f"browser:settlement-export:{hour}",
            now=at,
        )
        attempt = PaymentAttempt.objects.create(
            order=order,
            provider="sandbox",
            amount=order.price,
            currency=order.currency,
            status="pending",
            created_at=at,
            updated_at=at,
        )
        sandbox.capture_at_gateway(attempt, at)
    do_reconcile_day(day, "sandbox", actor="staff:fin", now=clock.now())
    run = SettlementRun.objects.get(date=day, currency="HKD")
    user = get_user_model().objects.create_user("fin-x", password="x-unused-9", is_staff=True)
    user.groups.add(Group.objects.get(name="finance"))
    page = page_for("zh-hant", width=1280)
    _sign_in(page, live_server, user)

    # when finance opens the run's mismatches from the run list
    page.goto(f"{live_server.url}/ops/finance/settlementrun/")
    shot(page, "settlement-export-runs-zh-hant")
    assert page.locator("a.leb-export-link").count() == 1
    page.locator("#result_list tbody tr td a strong").first.click()
    page.wait_for_load_state()
    assert page.locator("#result_list tbody tr").count() == 2

    # and follows the mismatch list's Export link, asking for Excel
    page.locator("a.leb-export-link").first.click()
    page.wait_for_load_state()
    assert f"(run__id__exact) = {run.pk}" in page.locator("#leb-export-filters").inner_text()
    page.locator("input[name=format][value=xlsx]").check()
    shot(page, "settlement-export-form-zh-hant")
    page.locator("input[type=submit]").click()
    page.wait_for_load_state()

    # then the job holds the list's filter, and once the worker has written
    # it the Exports page offers the file
    job = ExportJob.objects.get()
    assert (job.dataset, job.filters) == ("settlement_mismatches", {"run__id__exact": str(run.pk)})
    assert do_run_export(job.pk).status == ExportStatus.DONE
    link = page.locator(f"#job-{job.public_id} a.leb-export-download")
    link.wait_for(timeout=15_000)
    shot(page, "settlement-export-page-zh-hant")
    with page.expect_download() as download_info:
        link.click()
    saved = ARTIFACTS / "exports-settlement-mismatches.xlsx"
    download_info.value.save_as(str(saved))

    # and the workbook holds the run's two mismatches, their kind in
    # Traditional Chinese and the amount the gateway captured as a number
    rows = list(load_workbook(saved).active.iter_rows(values_only=True))
    assert len(rows) == 3
    assert {row[1] for row in rows[1:]} == {datetime.combine(day, time())}
    assert {row[9] for row in rows[1:]} == {50}
    assert {row[11] for row in rows[1:]} == {run.pk}
    assert "Paid, not fulfilled" not in {row[0] for row in rows[1:]}
