"""An export in a browser: support filters the order list, follows its
Export link, asks for an Excel file, watches the Exports page until the
worker has written it, and downloads it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from openpyxl import load_workbook

from leb.common import clock
from leb.exports.actions import do_run_export
from leb.exports.models import ExportJob, ExportStatus
from leb.testing import topup

from .helpers import ARTIFACTS, shot

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page: Any, live_server: Any, user: Any) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def test_support_exports_the_filtered_orders_and_downloads_the_workbook(
    page_for: Any,
    live_server: Any,
    make_line: Any,
    hkd_plan: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    # given two completed web top-ups and one by phone, and support signed in
    settings.EXPORTS_DIR = str(tmp_path / "exports")
    now = clock.now()
    for channel in ("web", "web", "ivr"):
        topup(make_line(at=now), hkd_plan, now=now, channel=channel)
    support = get_user_model().objects.create_user(
        "sue-browser", password="x-unused-9", is_staff=True
    )
    support.groups.add(Group.objects.get(name="support"))
    page = page_for("zh-hans", width=1280)
    _sign_in(page, live_server, support)

    # when support lists the web top-ups and follows the list's export link
    page.goto(f"{live_server.url}/ops/topups/topuporder/?channel__exact=web")
    assert page.locator("#result_list tbody tr").count() == 2
    shot(page, "exports-order-list-zh-hans")
    page.locator("a.leb-export-link").first.click()
    page.wait_for_load_state()
    assert "(channel__exact) = web" in page.locator("#leb-export-filters").inner_text()
    page.locator("input[name=format][value=xlsx]").check()
    shot(page, "exports-form-zh-hans")
    page.locator("input[type=submit]").click()
    page.wait_for_load_state()

    # then the Exports page shows the queued export, and reloads itself
    job = ExportJob.objects.get()
    assert job.filters == {"channel__exact": "web"}
    row = page.locator(f"#job-{job.public_id}")
    assert row.is_visible()
    assert page.locator("meta[http-equiv=refresh]").count() == 1

    # when the worker writes it, the page (reloading by itself) offers the download
    assert do_run_export(job.pk).status == ExportStatus.DONE
    link = page.locator(f"#job-{job.public_id} a.leb-export-download")
    link.wait_for(timeout=15_000)
    assert page.locator(f"#job-{job.public_id} progress").get_attribute("value") == "100"
    shot(page, "exports-page-zh-hans")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    saved = ARTIFACTS / "exports-orders.xlsx"
    download.save_as(str(saved))

    # then the workbook holds the two web orders, with the Chinese plan name
    assert download.suggested_filename.startswith("orders-")
    assert download.suggested_filename.endswith(".xlsx")
    rows = list(load_workbook(saved).active.iter_rows(values_only=True))
    assert len(rows) == 3
    plans = {row[6] for row in rows[1:]}
    assert plans == {"50港元 / 180天"}
    assert {row[8] for row in rows[1:]} == {50}
