from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from leb.jobs.models import PeriodicJob
from leb.jobs.schedule import scheduled_jobs

from . import tasks

# Every periodic job of every app must run cleanly on an empty database.
SCHEDULED_TASKS = {job.task_path for job in scheduled_jobs()}


def successful_task_paths() -> set[str]:
    return set(
        DBTaskResult.objects.filter(status=TaskResultStatus.SUCCESSFUL).values_list(
            "task_path", flat=True
        )
    )


@pytest.mark.django_db(transaction=True)
def test_worker_batch_runs_the_due_scheduled_jobs_and_exits() -> None:
    # given
    assert not PeriodicJob.objects.exists()

    # when
    call_command("worker", "--batch")

    # then
    assert successful_task_paths() == SCHEDULED_TASKS
    assert not DBTaskResult.objects.exclude(status=TaskResultStatus.SUCCESSFUL).exists()
    sweep = PeriodicJob.objects.get(name="lines-sweep")
    assert sweep.last_run_at is not None
    assert DBTaskResult.objects.get(id=sweep.last_enqueued_task_id).return_value == {
        "lines": 0,
        "transitions": 0,
        "terminated": 0,
        "numbers_released": 0,
    }


@pytest.mark.django_db(transaction=True)
def test_worker_batch_does_not_rerun_a_job_within_its_interval() -> None:
    # given
    call_command("worker", "--batch")

    # when
    call_command("worker", "--batch")

    # then
    assert DBTaskResult.objects.count() == len(SCHEDULED_TASKS)


@pytest.mark.django_db(transaction=True)
def test_worker_batch_runs_a_job_moved_forward_in_the_back_office() -> None:
    # given
    call_command("worker", "--batch")
    PeriodicJob.objects.filter(name="lines-sweep").update(next_run_at=timezone.now())

    # when
    call_command("worker", "--batch")

    # then
    assert DBTaskResult.objects.filter(task_path="leb.lines.tasks.sweep_lines_task").count() == 2


@pytest.mark.django_db(transaction=True)
def test_worker_batch_without_scheduler_only_runs_queued_tasks() -> None:
    # given
    tasks.record_run.enqueue("queued")

    # when
    call_command("worker", "--batch", "--no-scheduler")

    # then
    assert tasks.RUNS == ["queued"]
    assert not PeriodicJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_worker_restores_the_signal_handlers_it_replaced() -> None:
    # given
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    # when
    call_command("worker", "--batch", "--no-scheduler")

    # then
    assert {signum: signal.getsignal(signum) for signum in before} == before


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: a separate worker process must see the test database",
)
@pytest.mark.django_db(transaction=True)
def test_worker_process_runs_scheduled_jobs_and_stops_on_sigterm() -> None:
    # given
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "LEB_DATABASE_URL": f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "leb.cli", "worker", "--interval", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    # when
    try:
        deadline = time.monotonic() + 30
        while successful_task_paths() != SCHEDULED_TASKS and time.monotonic() < deadline:
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()

    # then
    assert successful_task_paths() == SCHEDULED_TASKS, output.decode()
    assert worker.returncode == 0, output.decode()
    sweep = PeriodicJob.objects.get(name="lines-sweep")
    assert sweep.last_run_at is not None
    assert sweep.next_run_at - sweep.last_run_at == timedelta(seconds=settings.SWEEP_INTERVAL)
