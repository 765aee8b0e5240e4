from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from django.db import connection, connections, transaction
from django_tasks_db.models import DBTaskResult
from pytest_django.fixtures import Settings

from leb.jobs.models import PeriodicJob
from leb.jobs.schedule import ScheduledJob, scheduled_jobs
from leb.jobs.scheduler import claim_and_enqueue, run_scheduler, tick

RECORD_RUN = "leb.jobs.tests.tasks.record_run"
needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: concurrent connections with row locks",
)


def enqueued(task_path: str) -> int:
    return DBTaskResult.objects.filter(task_path=task_path).count()


@pytest.mark.django_db
def test_tick_enqueues_a_due_job_once_per_interval(now: datetime) -> None:
    # given
    job = ScheduledJob("recorder", RECORD_RUN, 60)

    # when
    first = tick(now, [job])
    same_interval = tick(now + timedelta(seconds=59), [job])
    next_interval = tick(now + timedelta(seconds=60), [job])

    # then
    assert first == ["recorder"]
    assert same_interval == []
    assert next_interval == ["recorder"]
    assert enqueued(RECORD_RUN) == 2
    row = PeriodicJob.objects.get(name="recorder")
    assert row.last_run_at == now + timedelta(seconds=60)
    assert row.next_run_at == now + timedelta(seconds=120)
    assert row.last_enqueued_task_id == str(DBTaskResult.objects.latest("enqueued_at").id)


@pytest.mark.django_db
def test_first_tick_creates_the_code_schedule(now: datetime, settings: Settings) -> None:
    # given
    settings.SWEEP_INTERVAL = 300

    # when
    names = tick(now)

    # then
    assert sorted(names) == sorted(job.name for job in scheduled_jobs())
    assert {"lines-sweep", "orders-expiry", "orders-recovery", "reminders-scan"} <= set(names)
    sweep = PeriodicJob.objects.get(name="lines-sweep")
    assert sweep.task_path == "leb.lines.tasks.sweep_lines_task"
    assert sweep.interval_seconds == 300
    assert sweep.next_run_at == now + timedelta(seconds=300)
    assert enqueued("leb.lines.tasks.sweep_lines_task") == 1
    assert enqueued("leb.topups.tasks.recover_paid_orders_task") == 1
    assert enqueued("leb.topups.tasks.expire_unpaid_orders_task") == 1


@pytest.mark.django_db
def test_an_existing_row_keeps_its_next_run(now: datetime) -> None:
    # given
    next_run_at = now + timedelta(seconds=30)
    PeriodicJob.objects.create(
        name="recorder", task_path="old.path", interval_seconds=60, next_run_at=next_run_at
    )

    # when
    names = tick(now, [ScheduledJob("recorder", RECORD_RUN, 60)])

    # then
    assert names == []
    row = PeriodicJob.objects.get(name="recorder")
    assert row.task_path == RECORD_RUN
    assert row.next_run_at == next_run_at


@pytest.mark.django_db
def test_a_shorter_interval_brings_the_next_run_closer(now: datetime) -> None:
    # given
    PeriodicJob.objects.create(
        name="recorder",
        task_path=RECORD_RUN,
        interval_seconds=86400,
        next_run_at=now + timedelta(hours=20),
    )

    # when
    tick(now, [ScheduledJob("recorder", RECORD_RUN, 60)])

    # then
    row = PeriodicJob.objects.get(name="recorder")
    assert row.interval_seconds == 60
    assert row.next_run_at == now + timedelta(seconds=60)


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_ticking_at_the_same_moment_enqueue_once(now: datetime) -> None:
    # given
    job = ScheduledJob("recorder", RECORD_RUN, 60)

    # when
    first_scheduler = tick(now, [job])
    second_scheduler = tick(now, [job])

    # then
    assert first_scheduler == ["recorder"]
    assert second_scheduler == []
    assert enqueued(RECORD_RUN) == 1


@pytest.mark.django_db(transaction=True)
def test_a_broken_job_does_not_stop_the_others(now: datetime) -> None:
    # given
    broken = ScheduledJob("broken", "leb.jobs.tests.tasks.no_such_task", 60)
    working = ScheduledJob("recorder", RECORD_RUN, 60)

    # when
    names = tick(now, [broken, working])

    # then
    assert names == ["recorder"]
    assert enqueued(RECORD_RUN) == 1
    # The failed claim rolled back, so the broken job stays due.
    assert PeriodicJob.objects.get(name="broken").next_run_at == now


def test_the_code_schedule_names_the_periodic_tasks(settings: Settings) -> None:
    # given
    settings.SWEEP_INTERVAL, settings.RECOVERY_INTERVAL, settings.ORDER_EXPIRY_INTERVAL = 1, 2, 3

    # when
    jobs = {job.name: job for job in scheduled_jobs()}

    # then
    assert jobs["lines-sweep"] == ScheduledJob("lines-sweep", "leb.lines.tasks.sweep_lines_task", 1)
    assert jobs["orders-recovery"] == ScheduledJob(
        "orders-recovery", "leb.topups.tasks.recover_paid_orders_task", 2
    )
    assert jobs["orders-expiry"] == ScheduledJob(
        "orders-expiry", "leb.topups.tasks.expire_unpaid_orders_task", 3
    )


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_schedulers_enqueue_once(now: datetime) -> None:
    # given
    job = ScheduledJob("recorder", RECORD_RUN, 60)
    contenders = 8
    start = threading.Barrier(contenders)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            start.wait()
            results.append(tick(now, [job]))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=scheduler) for _ in range(contenders)]

    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # then
    assert errors == []
    assert sorted(results) == [[]] * (contenders - 1) + [["recorder"]]
    assert enqueued(RECORD_RUN) == 1


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_waits_for_the_other_and_then_finds_nothing_due(now: datetime) -> None:
    # given
    job = ScheduledJob("recorder", RECORD_RUN, 60)
    tick(now - timedelta(seconds=60), [job])
    first_claimed, release_first = threading.Event(), threading.Event()
    second_result: list[str | None] = []

    def first_scheduler() -> None:
        try:
            with transaction.atomic():
                assert claim_and_enqueue(job, now) is not None
                first_claimed.set()
                release_first.wait(10)
        finally:
            connections.close_all()

    def second_scheduler() -> None:
        try:
            second_result.append(claim_and_enqueue(job, now))
        finally:
            connections.close_all()

    first = threading.Thread(target=first_scheduler)
    second = threading.Thread(target=second_scheduler)

    # when
    first.start()
    assert first_claimed.wait(10)
    second.start()
    second.join(0.5)
    blocked_on_the_row = second.is_alive()
    release_first.set()
    first.join(10)
    second.join(10)

    # then
    assert blocked_on_the_row
    assert second_result == [None]
    assert enqueued(RECORD_RUN) == 2  # the earlier tick's, and the first claim's


def other_backend_pids() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_the_scheduler_thread_ticks_and_closes_its_connection() -> None:
    # given: connections other tests may have left (live servers, races)
    before = other_backend_pids()
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(stop, 0.05), daemon=True)

    # when
    expected = len(scheduled_jobs())
    thread.start()
    for _ in range(200):
        if PeriodicJob.objects.filter(last_run_at__isnull=False).count() == expected:
            break
        stop.wait(0.05)
    stop.set()
    thread.join(10)

    # then
    assert not thread.is_alive()
    assert PeriodicJob.objects.filter(last_run_at__isnull=False).count() == expected
    # the scheduler thread's own connection is gone
    assert other_backend_pids() <= before
