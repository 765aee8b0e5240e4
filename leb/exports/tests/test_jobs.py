"""Export jobs: who may ask for which dataset, the task and its progress,
failures, the download (the requester's or a superuser's only), the purge
of expired files, and the back-office pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from leb.audit.models import AuditAction, AuditEntry
from leb.common.exporting import Column, Dataset, Prepared
from leb.exports.actions import (
    ExportRefused,
    do_purge_expired_exports,
    do_request_export,
    do_run_export,
)
from leb.exports.files import exports_dir, path_of
from leb.exports.models import ExportJob, ExportStatus
from leb.exports.registry import registry
from leb.testing import topup

from .conftest import signed_in

pytestmark = pytest.mark.django_db


# --- Who may export what ----------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("support", {"orders", "receipts"}),
        ("finance", {"orders", "receipts", "ledger", "agent_statements"}),
        ("admin_staff", {"orders", "receipts", "ledger", "agent_statements"}),
    ],
)
def test_each_role_may_request_exactly_its_datasets(
    role: str, allowed: set[str], request: pytest.FixtureRequest
) -> None:
    user = request.getfixturevalue(role)
    for name in ("orders", "receipts", "ledger", "agent_statements"):
        before_jobs, before_audit = ExportJob.objects.count(), AuditEntry.objects.count()
        # when the member of staff asks for the dataset
        if name in allowed:
            job = do_request_export(user, name, "csv", {})
            # then a queued job and an audit entry are written
            assert job.status == ExportStatus.QUEUED
            entry = AuditEntry.objects.order_by("-pk").first()
            assert entry is not None and entry.action == AuditAction.EXPORT_REQUEST
            assert entry.target == f"export:{job.public_id}"
        else:
            with pytest.raises(ExportRefused) as refused:
                do_request_export(user, name, "csv", {})
            # then it is refused in words, and nothing is written
            assert "your role does not include it" in str(refused.value)
            assert ExportJob.objects.count() == before_jobs
            assert AuditEntry.objects.count() == before_audit


def test_an_unknown_dataset_or_format_is_refused(support: Any) -> None:
    with pytest.raises(ExportRefused, match="There is no export named payroll"):
        do_request_export(support, "payroll", "csv", {})
    with pytest.raises(ExportRefused, match="Choose CSV or XLSX"):
        do_request_export(support, "orders", "pdf", {})
    assert not ExportJob.objects.exists()


def test_support_asking_for_the_ledger_on_the_page_is_told_why_and_nothing_is_written(
    support: Any,
) -> None:
    client = signed_in(support)
    url = reverse("admin:exports_exportjob_request")
    # when support opens the ledger's export form, and posts it anyway
    page = client.get(url, {"dataset": "ledger"})
    posted = client.post(url, {"dataset": "ledger", "format": "csv"})
    # then both answer 403 with the reason on the page, and no job exists
    for response in (page, posted):
        assert response.status_code == 403
        assert "You may not export Ledger transfers" in response.content.decode()
    assert not ExportJob.objects.exists()


# --- The task, its progress and its failures --------------------------------------


class ProbeDataset(Dataset):
    """Rows that look at the job's saved progress as they are written."""

    name = "probe"
    label = "Probe"
    permission = "exports.export_orders"
    columns = (Column("n", "n"),)
    seen: list[int] = []
    fail_at: int | None = None

    def prepare(self, cleaned: dict[str, Any], chunk_size: int) -> Prepared:
        return Prepared(5, self._rows())

    def _rows(self) -> Iterator[Sequence[Any]]:
        for n in range(5):
            if n == self.fail_at:
                raise RuntimeError("the database went away")
            job = ExportJob.objects.get(dataset=self.name)
            self.seen.append(job.rows_done)
            assert job.status == ExportStatus.RUNNING and job.rows_total == 5
            yield (n,)


@pytest.fixture
def probe() -> Iterator[ProbeDataset]:
    dataset = ProbeDataset()
    dataset.seen = []
    registry.add(dataset)
    yield dataset
    registry._datasets.pop(dataset.name, None)


def test_progress_is_saved_after_every_chunk(support: Any, probe: ProbeDataset) -> None:
    # given a queued export of five rows
    job = do_request_export(support, "probe", "csv", {})
    # when the worker runs it two rows at a time
    outcome = do_run_export(job.pk, chunk_size=2)
    # then each row saw the progress saved after the chunks before it
    assert probe.seen == [0, 0, 2, 2, 4]
    job.refresh_from_db()
    assert outcome.status == ExportStatus.DONE
    assert (job.rows_done, job.rows_total, job.percent) == (5, 5, 100)


def test_the_task_runs_a_job_once_even_if_delivered_twice(
    support: Any, probe: ProbeDataset
) -> None:
    from leb.exports.tasks import run_export

    job = do_request_export(support, "probe", "csv", {})
    assert run_export.call(job.pk) == "done"
    probe.seen.clear()
    # when the same task arrives again, nothing is written again
    assert run_export.call(job.pk) == "done"
    assert probe.seen == []


def test_a_request_queues_the_task_when_its_transaction_commits(
    support: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django_tasks_db.models import DBTaskResult

    with django_capture_on_commit_callbacks(execute=True):
        job = do_request_export(support, "orders", "csv", {})
    queued = DBTaskResult.objects.get()
    assert queued.task_path == "leb.exports.tasks.run_export"
    assert queued.args_kwargs["args"] == [job.pk]


def test_a_failed_export_keeps_its_error_and_leaves_no_file(
    support: Any, probe: ProbeDataset
) -> None:
    # given an export whose rows fail after three
    probe.fail_at = 3
    job = do_request_export(support, "probe", "xlsx", {})
    # when the worker runs it
    outcome = do_run_export(job.pk, chunk_size=2)
    # then the job failed with the reason, and neither file nor part is left
    job.refresh_from_db()
    assert outcome.status == job.status == ExportStatus.FAILED
    assert job.error == "the database went away"
    assert job.file_name == ""
    assert list(exports_dir().iterdir()) == []


# --- Download ---------------------------------------------------------------------


def test_only_the_requester_or_a_superuser_downloads_the_file(
    export: Callable[..., ExportJob],
    support: Any,
    finance: Any,
    root: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given support's finished export
    topup(make_line(), hkd_plan, now=now)
    job = export(support, "orders", "xlsx")
    url = reverse("admin:exports_exportjob_download", args=[job.public_id])
    path = path_of(job.file_name)
    assert path is not None

    # when the requester downloads it, they get the file, and it is audited
    mine = signed_in(support).get(url)
    assert mine.status_code == 200
    assert mine.getvalue() == path.read_bytes()
    assert mine["Content-Disposition"].startswith('attachment; filename="orders-')
    entry = AuditEntry.objects.order_by("-pk").first()
    assert entry is not None and entry.action == AuditAction.EXPORT_DOWNLOAD
    assert entry.actor == "staff:sue-support"

    # and someone else in another role finds nothing there, a superuser does
    assert signed_in(finance).get(url).status_code == 404
    assert signed_in(root).get(url).status_code == 200
    # and someone else's job is not on their Exports page
    page = signed_in(finance).get(reverse("admin:exports_exportjob_changelist"))
    assert str(job.public_id) not in page.content.decode()


def test_a_job_without_a_file_sends_back_to_the_exports_page(support: Any) -> None:
    job = do_request_export(support, "orders", "csv", {})
    response = signed_in(support).get(
        reverse("admin:exports_exportjob_download", args=[job.public_id]), follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("admin:exports_exportjob_changelist")
    assert "This export has no file to download (yet)." in response.content.decode()


# --- Purge ------------------------------------------------------------------------


def test_the_purge_deletes_expired_jobs_and_their_files_only(
    export: Callable[..., ExportJob], support: Any, now: datetime, settings: Any
) -> None:
    # given an export made eight days ago (kept seven) and one made today
    settings.EXPORTS_RETENTION_DAYS = 7
    old = export(support, "orders")
    ExportJob.objects.filter(pk=old.pk).update(
        requested_at=now - timedelta(days=8), expires_at=now - timedelta(days=1)
    )
    fresh = export(support, "orders")
    running = do_request_export(support, "orders", "csv", {})
    ExportJob.objects.filter(pk=running.pk).update(
        status=ExportStatus.RUNNING, started_at=now - timedelta(hours=1), expires_at=now
    )
    stuck = do_request_export(support, "orders", "csv", {})
    ExportJob.objects.filter(pk=stuck.pk).update(
        status=ExportStatus.RUNNING, started_at=now - timedelta(days=2), expires_at=now
    )
    old_path, fresh_path = path_of(old.file_name), path_of(fresh.file_name)
    assert old_path is not None and old_path.exists()

    # when the purge runs
    assert do_purge_expired_exports(now=now) == 2

    # then the old job and its file are gone, and the job whose worker died
    # two days ago; the fresh one and the one running now are kept
    assert not ExportJob.objects.filter(pk=old.pk).exists()
    assert not ExportJob.objects.filter(pk=stuck.pk).exists()
    assert not old_path.exists()
    assert fresh_path is not None and fresh_path.exists()
    assert ExportJob.objects.filter(pk=running.pk).exists()
    assert fresh.expires_at == now + timedelta(days=7)


def test_the_purge_is_a_periodic_job() -> None:
    from leb.jobs.checks import check_schedule
    from leb.jobs.schedule import scheduled_jobs

    jobs = {job.name: job for job in scheduled_jobs()}
    assert jobs["exports-purge"].task_path == "leb.exports.tasks.purge_expired_exports_task"
    assert check_schedule() == []


def test_a_file_name_cannot_leave_the_exports_folder() -> None:
    assert path_of("../leb.sqlite3") is None
    assert path_of(".hidden") is None
    assert path_of("") is None


# --- Pages ------------------------------------------------------------------------


def test_the_exports_page_shows_progress_and_reloads_while_a_job_runs(
    support: Any, now: datetime
) -> None:
    # given a job one third done
    job = do_request_export(support, "orders", "csv", {"status__exact": "fulfilled"})
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.RUNNING, rows_done=1000, rows_total=3000
    )
    client = signed_in(support)

    # when support opens the Exports page
    page = client.get(reverse("admin:exports_exportjob_changelist")).content.decode()

    # then the job shows a bar and the rows in words, and the page reloads itself
    assert '<progress max="100" value="33">' in page
    assert "1,000 of 3,000 rows (33%)" in page
    assert '<meta http-equiv="refresh" content="3; url=/ops/exports/exportjob/">' in page
    assert "status (status__exact) = fulfilled" in page

    # and once it is done the page stops reloading and offers the download
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.QUEUED)
    assert do_run_export(job.pk).status == ExportStatus.DONE
    page = client.get(reverse("admin:exports_exportjob_changelist")).content.decode()
    assert "http-equiv" not in page
    assert reverse("admin:exports_exportjob_download", args=[job.public_id]) in page


def test_the_export_link_of_a_list_carries_its_filters_to_the_form_and_the_job(
    support: Any, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    topup(make_line(), hkd_plan, now=now)
    client = signed_in(support)

    # when support filters the order list and follows its export link
    listing = client.get(
        reverse("admin:topups_topuporder_changelist"), {"status__exact": "fulfilled", "o": "2"}
    ).content.decode()
    link = (
        reverse("admin:exports_exportjob_request") + "?dataset=orders&amp;status__exact=fulfilled"
    )
    assert link in listing
    assert "Export: Receipts" in listing
    form = client.get(
        reverse("admin:exports_exportjob_request"),
        {"dataset": "orders", "status__exact": "fulfilled", "o": "2"},
    )
    assert form.status_code == 200
    assert 'name="status__exact" value="fulfilled"' in form.content.decode()

    # and posts the form
    response = client.post(
        reverse("admin:exports_exportjob_request"),
        {"dataset": "orders", "status__exact": "fulfilled", "format": "xlsx"},
    )

    # then the job holds exactly the list's filters, and the Exports page shows it
    job = ExportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"#job-{job.public_id}")
    assert (job.dataset, job.format, job.filters) == (
        "orders",
        "xlsx",
        {"status__exact": "fulfilled"},
    )
    assert job.requested_by == support


def test_the_ledger_and_statement_links_are_offered_to_finance_only(
    finance: Any, support: Any
) -> None:
    url = reverse("admin:ledger_transfer_changelist")
    assert "Export: Ledger transfers" in signed_in(finance).get(url).content.decode()
    agents = signed_in(finance).get(
        reverse("admin:agents_agent_changelist"), {"status__exact": "active"}
    )
    assert "?dataset=agent_statements&amp;status__exact=active" in agents.content.decode()
    agents = signed_in(support).get(reverse("admin:agents_agent_changelist"))
    assert agents.status_code == 200
    assert "Export: Agents" not in agents.content.decode()
    orders = signed_in(support).get(reverse("admin:topups_topuporder_changelist"))
    assert "Export: Ledger transfers" not in orders.content.decode()


def test_a_bad_filter_on_the_form_is_said_and_nothing_is_written(support: Any) -> None:
    client = signed_in(support)
    url = reverse("admin:exports_exportjob_request")
    # when the form is opened with a filter the export cannot honour, it says so
    # and offers no button; posting it anyway is refused the same way
    form = client.get(url, {"dataset": "orders", "plan__code": "hk-50"})
    response = client.post(url, {"dataset": "orders", "plan__code": "hk-50", "format": "csv"})
    for answer in (form, response):
        assert answer.status_code == 400
        assert "The filter plan__code cannot be exported" in answer.content.decode()
    assert "Start the export" not in form.content.decode()
    assert not ExportJob.objects.exists()


def test_the_statement_form_asks_for_the_period(finance: Any) -> None:
    page = signed_in(finance).get(
        reverse("admin:exports_exportjob_request"),
        {"dataset": "agent_statements", "currency__exact": "HKD"},
    )
    content = page.content.decode()
    assert page.status_code == 200
    assert 'type="date" name="date_from"' in content
    assert 'value="2026-06-01"' in content
