"""Every write of the exports app: request an export, run it (the task's
body), note a download, purge what has expired."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.transactions import one_transaction, own_transactions

from .files import exports_dir, path_of
from .models import ExportFormat, ExportJob, ExportStatus
from .registry import registry
from .writers import EXTENSIONS, open_writer

logger = logging.getLogger(__name__)


# A job "running" for longer than this has lost its worker.
STUCK_AFTER = timedelta(days=1)


class ExportRefused(Exception):
    """Why an export cannot be requested, in words for the person asking."""


def _actor(user: Any) -> str:
    return f"staff:{user.get_username()}"


@one_transaction
def do_request_export(
    user: Any,
    dataset_name: str,
    file_format: str,
    filters: dict[str, Any],
    *,
    language: str | None = None,
    now: datetime | None = None,
) -> ExportJob:
    """Queue an export of `dataset_name` with `filters` for `user`. Refused
    (ExportRefused, nothing written) when the dataset is unknown, the user
    lacks its permission, the format is not offered or a filter is wrong."""
    dataset = registry.get(dataset_name)
    if dataset is None:
        raise ExportRefused(_("There is no export named %(name)s.") % {"name": dataset_name})
    if not user.has_perm(dataset.permission):
        raise ExportRefused(
            _("You may not export %(dataset)s: your role does not include it.")
            % {"dataset": dataset.label}
        )
    if file_format not in ExportFormat.values:
        raise ExportRefused(_("Choose CSV or XLSX."))
    try:
        dataset.clean_filters(filters)
    except ValidationError as exc:
        raise ExportRefused(" ".join(exc.messages)) from exc
    # As the list's own parameters (ordering, page) do not change its rows,
    # they are not kept.
    stored = {key: value for key, value in filters.items() if dataset.kept(key, value)}
    now = now or clock.now()
    job = ExportJob.objects.create(
        dataset=dataset.name,
        format=file_format,
        filters=stored,
        language=language or translation.get_language() or settings.LANGUAGE_CODE,
        requested_by=user,
        requested_at=now,
        expires_at=now + timedelta(days=settings.EXPORTS_RETENTION_DAYS),
    )
    record(
        _actor(user),
        AuditAction.EXPORT_REQUEST,
        f"export:{job.public_id}",
        {"dataset": dataset.name, "format": file_format, "filters": stored},
        now=now,
    )
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from .tasks import run_export

    run_export.enqueue(job_id)


@dataclass(frozen=True)
class RunOutcome:
    status: str
    rows: int


def _claim(job_id: int, now: datetime) -> bool:
    # Only a queued job starts: a task delivered twice runs the export once.
    return bool(
        ExportJob.objects.filter(pk=job_id, status=ExportStatus.QUEUED).update(
            status=ExportStatus.RUNNING, started_at=now
        )
    )


@own_transactions
def do_run_export(job_id: int, *, chunk_size: int | None = None) -> RunOutcome:
    """Write the job's file, `chunk_size` rows (LEB_EXPORTS_CHUNK_SIZE) at a
    time, saving the progress after each chunk. The file is written under a
    temporary name and renamed when complete, so a download never gets half
    a file. A failure is kept on the job (status failed, the error)."""
    chunk_size = chunk_size or settings.EXPORTS_CHUNK_SIZE
    if not _claim(job_id, clock.now()):
        job = ExportJob.objects.filter(pk=job_id).first()
        return RunOutcome(job.status if job else "missing", job.rows_done if job else 0)
    job = ExportJob.objects.get(pk=job_id)
    folder = exports_dir()
    file_name = f"{job.public_id}.{EXTENSIONS[job.format]}"
    final = folder / file_name
    partial = folder / f".{file_name}.part"
    done = 0
    try:
        dataset = registry.get(job.dataset)
        if dataset is None:
            raise ExportRefused(_("There is no export named %(name)s.") % {"name": job.dataset})
        with translation.override(job.language):
            cleaned = dataset.clean_filters(job.filters)
            prepared = dataset.prepare(cleaned, chunk_size)
            ExportJob.objects.filter(pk=job.pk).update(rows_total=prepared.total)
            folder.mkdir(parents=True, exist_ok=True)
            writer = open_writer(job.format, partial, dataset.columns, str(dataset.label))
            try:
                for row in prepared.rows:
                    writer.write(row)
                    done += 1
                    if done % chunk_size == 0:
                        ExportJob.objects.filter(pk=job.pk).update(rows_done=done)
            finally:
                writer.close()
        digest = hashlib.sha256()
        with partial.open("rb") as written:
            for block in iter(lambda: written.read(1 << 20), b""):
                digest.update(block)
        os.replace(partial, final)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportStatus.DONE,
            rows_done=done,
            rows_total=done,
            file_name=file_name,
            file_size=final.stat().st_size,
            sha256=digest.hexdigest(),
            finished_at=clock.now(),
        )
        return RunOutcome(ExportStatus.DONE, done)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        logger.exception("Export %s failed", job.public_id)
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportStatus.FAILED,
            rows_done=done,
            error=message[:2000] or exc.__class__.__name__,
            finished_at=clock.now(),
        )
        return RunOutcome(ExportStatus.FAILED, done)


@one_transaction
def do_record_export_download(job: ExportJob, user: Any, *, now: datetime | None = None) -> None:
    """Who took a copy of the file: exports hold subscribers' numbers and money."""
    record(
        _actor(user),
        AuditAction.EXPORT_DOWNLOAD,
        f"export:{job.public_id}",
        {"dataset": job.dataset, "format": job.format, "sha256": job.sha256},
        now=now,
    )


@own_transactions
def do_purge_expired_exports(*, now: datetime | None = None) -> int:
    """Delete the jobs past their `expires_at` (LEB_EXPORTS_RETENTION_DAYS
    after the request) and their files; the periodic job's body. Returns how
    many jobs went. A job still running is left for the next run, unless it
    started more than a day ago (its worker died: nothing will finish it)."""
    now = now or clock.now()
    purged = 0
    expired = ExportJob.objects.filter(expires_at__lte=now).exclude(
        status=ExportStatus.RUNNING, started_at__gt=now - STUCK_AFTER
    )
    for job in expired.order_by("pk").iterator():
        path = path_of(job.file_name)
        if path is not None:
            path.unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job.pk).delete()
        purged += 1
    return purged
