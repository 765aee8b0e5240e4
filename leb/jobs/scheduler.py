"""Enqueue the periodic jobs when they are due.

Every worker process runs a scheduler, so several may tick at the same moment.
Each due job is claimed with one conditional UPDATE that moves `next_run_at`
forward; only the scheduler whose UPDATE changed the row enqueues the task, in
the same transaction. With the database task backend the task row commits
together with the claim, so a job is neither lost nor run twice per interval."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.db import close_old_connections, connections, transaction
from django.db.models import F
from django.db.models.functions import Least
from django.utils.module_loading import import_string
from django_tasks.base import Task

from leb.common import clock

from .models import PeriodicJob
from .schedule import ScheduledJob, scheduled_jobs

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0


def sync_schedule(jobs: list[ScheduledJob], now: datetime) -> dict[str, PeriodicJob]:
    """Mirror the code schedule into rows: insert what is missing (due now),
    update a changed task path or interval, keep the existing next_run_at
    unless a shorter interval brings it closer."""
    rows = PeriodicJob.objects.in_bulk([job.name for job in jobs])
    missing = [
        PeriodicJob(
            name=job.name,
            task_path=job.task_path,
            interval_seconds=job.interval_seconds,
            next_run_at=now,
        )
        for job in jobs
        if job.name not in rows
    ]
    if missing:
        # Another scheduler may insert the same rows first; theirs are as good.
        PeriodicJob.objects.bulk_create(missing, ignore_conflicts=True)
        rows.update(PeriodicJob.objects.in_bulk([row.name for row in missing]))
    for job in jobs:
        row = rows[job.name]
        if row.task_path == job.task_path and row.interval_seconds == job.interval_seconds:
            continue
        PeriodicJob.objects.filter(name=job.name).update(
            task_path=job.task_path,
            interval_seconds=job.interval_seconds,
            next_run_at=Least(F("next_run_at"), now + timedelta(seconds=job.interval_seconds)),
        )
        row.refresh_from_db()
    return rows


def claim_and_enqueue(job: ScheduledJob, now: datetime) -> str | None:
    """Enqueue `job` if this caller wins the claim; return the task id, or None
    if the job was not due or another scheduler claimed it first."""
    with transaction.atomic():
        # On PostgreSQL a concurrent claimer blocks on the row lock, then
        # re-checks the WHERE against the committed row and matches nothing.
        claimed = PeriodicJob.objects.filter(name=job.name, next_run_at__lte=now).update(
            next_run_at=now + timedelta(seconds=job.interval_seconds),
            last_run_at=now,
        )
        if claimed != 1:
            return None
        task = import_string(job.task_path)
        if not isinstance(task, Task):
            raise TypeError(f"{job.task_path} is not a task")
        result = task.enqueue()
        PeriodicJob.objects.filter(name=job.name).update(last_enqueued_task_id=str(result.id))
    return str(result.id)


def tick(now: datetime | None = None, jobs: list[ScheduledJob] | None = None) -> list[str]:
    """Enqueue every job that is due at `now`; return the names enqueued."""
    now = now or clock.now()
    jobs = scheduled_jobs() if jobs is None else jobs
    rows = sync_schedule(jobs, now)
    enqueued = []
    for job in jobs:
        if rows[job.name].next_run_at > now:
            continue
        try:
            task_id = claim_and_enqueue(job, now)
        except Exception:
            # One broken job must not stop the others; its claim rolled back,
            # so it is retried on the next tick.
            logger.exception("Could not enqueue periodic job %s", job.name)
            continue
        if task_id is not None:
            logger.info("Enqueued periodic job %s as task %s", job.name, task_id)
            enqueued.append(job.name)
    return enqueued


def run_scheduler(stop: threading.Event, tick_seconds: float = TICK_SECONDS) -> None:
    """Tick until `stop` is set. Meant to run in its own thread, which Django
    gives its own database connection; that connection is closed on the way out."""
    # The failure being repeated, logged once rather than every tick.
    ongoing_failure = ""
    try:
        while not stop.is_set():
            close_old_connections()
            try:
                tick()
            except Exception as exc:
                # A locked SQLite file, a dropped connection, a missing migration:
                # keep ticking, the next attempt may well succeed.
                failure = f"{type(exc).__name__}: {exc}"
                if failure != ongoing_failure:
                    logger.exception("Scheduler tick failed; retrying every tick quietly")
                    ongoing_failure = failure
            else:
                if ongoing_failure:
                    logger.info("Scheduler tick works again")
                    ongoing_failure = ""
            close_old_connections()
            stop.wait(tick_seconds)
    finally:
        connections.close_all()
