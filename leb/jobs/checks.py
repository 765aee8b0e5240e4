from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import import_string
from django_tasks.base import Task

from .schedule import scheduled_jobs


@register()
def check_schedule(**kwargs: Any) -> list[CheckMessage]:
    """Catch a bad schedule at startup rather than as a log line every tick."""
    errors: list[CheckMessage] = []
    names = set()
    for job in scheduled_jobs():
        if job.name in names:
            errors.append(Error(f"Periodic job {job.name!r} is defined twice.", id="jobs.E001"))
        names.add(job.name)
        if job.interval_seconds <= 0:
            errors.append(
                Error(
                    f"Periodic job {job.name!r} needs a positive interval.",
                    hint="Check the *_INTERVAL settings.",
                    id="jobs.E002",
                )
            )
        try:
            task = import_string(job.task_path)
        except ImportError as exc:
            errors.append(
                Error(
                    f"Periodic job {job.name!r}: cannot import {job.task_path}: {exc}",
                    id="jobs.E003",
                )
            )
            continue
        if not isinstance(task, Task):
            errors.append(
                Error(f"Periodic job {job.name!r}: {job.task_path} is not a task.", id="jobs.E004")
            )
    return errors
