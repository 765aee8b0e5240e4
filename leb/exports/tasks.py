from __future__ import annotations

from django_tasks import task

from .actions import do_purge_expired_exports, do_run_export


@task()
def run_export(job_id: int) -> str:
    """Write one requested export (leb.exports.actions.do_run_export)."""
    return str(do_run_export(job_id).status)


@task()
def purge_expired_exports_task() -> int:
    """Periodic: delete exports past LEB_EXPORTS_RETENTION_DAYS, files and all."""
    return do_purge_expired_exports()
