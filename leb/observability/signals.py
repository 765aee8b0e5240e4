"""Carry the request id into the tasks a request enqueues.

The id is written into the task row's `args_kwargs` under its own key (the
task is still called with its own args and kwargs only), with no extra
statement: the row is amended just before its INSERT. When a worker starts
the task, the id becomes the current one for the task's log lines and for
the tasks it enqueues in turn."""

from __future__ import annotations

from typing import Any

from django.core.signals import request_finished
from django.db.models.signals import pre_save
from django_tasks.signals import log_task_started, task_finished, task_started

from . import requestid

KEY = "request_id"


def stamp_task_row(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    current = requestid.get()
    if raw or not current or not instance._state.adding:
        return
    if isinstance(instance.args_kwargs, dict) and KEY not in instance.args_kwargs:
        instance.args_kwargs = {**instance.args_kwargs, KEY: current}


def on_task_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
    db_result = getattr(task_result, "db_result", None)
    stored = db_result.args_kwargs.get(KEY) if db_result is not None else None
    # A periodic job has no request: its own task id names its log lines.
    requestid.set_current(requestid.accept(stored) if stored else f"task-{task_result.id}")


def on_task_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    requestid.set_current("")


def on_request_finished(sender: Any, **kwargs: Any) -> None:
    requestid.set_current("")


def connect() -> None:
    from django_tasks_db.models import DBTaskResult

    # The middleware leaves the id set so that Django's own log line about the
    # response (django.request) carries it; it is cleared once the response is closed.
    request_finished.connect(on_request_finished, dispatch_uid="observability-request-finished")
    pre_save.connect(stamp_task_row, sender=DBTaskResult, dispatch_uid="observability-stamp")
    # Ahead of django_tasks' own "state=RUNNING" log line, so it carries the id too.
    task_started.disconnect(log_task_started)
    task_started.connect(on_task_started, dispatch_uid="observability-task-started")
    task_started.connect(log_task_started)
    task_finished.connect(on_task_finished, dispatch_uid="observability-task-finished")
