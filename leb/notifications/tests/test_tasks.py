from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django_tasks_db.models import DBTaskResult

import leb.sms
from leb.common import clock
from leb.jobs.schedule import scheduled_jobs
from leb.notifications.actions import NotifyRequest, notify, notify_many
from leb.notifications.models import Notification, Status

from .helpers import receipt_context


@pytest.mark.django_db
def test_notify_queues_an_immediate_delivery_in_its_transaction(
    make_line: Any, now: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    # given
    line = make_line()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        (row,) = notify(kind="topup_succeeded", context={}, dedupe_key="a", line=line, now=now)

    # then the task row is written with the message, not by a second commit
    assert callbacks == []
    task = DBTaskResult.objects.get(task_path="leb.notifications.tasks.deliver_notifications_task")
    assert task.args_kwargs["args"] == [[row.pk]]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_notify_leaves_no_delivery_task(make_line: Any, now: datetime) -> None:
    # given
    line = make_line()

    # when the event's transaction fails after the message was queued
    with pytest.raises(RuntimeError), transaction.atomic():
        notify(kind="topup_succeeded", context={}, dedupe_key="a", line=line, now=now)
        raise RuntimeError

    # then neither the message nor its delivery task exists
    assert not Notification.objects.exists()
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_notify_many_queues_one_delivery_run(make_line: Any, now: datetime) -> None:
    lines = [make_line() for _ in range(3)]
    notify_many(
        [NotifyRequest(kind="k", context={}, dedupe_key="b", line_id=x.pk) for x in lines],
        now=now,
    )
    assert (
        DBTaskResult.objects.filter(
            task_path="leb.notifications.tasks.deliver_due_notifications_task"
        ).count()
        == 1
    )


@pytest.mark.django_db(transaction=True)
def test_the_worker_delivers_what_was_committed(make_line: Any) -> None:
    # given a notification committed with its event
    at = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
    line = make_line(at=at)
    notify(
        kind="topup_succeeded",
        context=receipt_context(datetime(2026, 12, 28, tzinfo=UTC)),
        dedupe_key="w",
        line=line,
        now=at,
    )

    # when a worker runs the queued task
    with clock.frozen(at):
        call_command("worker", "--batch", "--no-scheduler")

    # then
    assert Notification.objects.get().status == Status.SENT
    assert [m.to for m in leb.sms.outbox] == [line.msisdn]


def test_the_delivery_job_is_scheduled(settings: Any) -> None:
    settings.NOTIFICATIONS_DELIVERY_INTERVAL = 45
    (job,) = [j for j in scheduled_jobs() if j.name == "notifications-delivery"]
    assert job.task_path == "leb.notifications.tasks.deliver_due_notifications_task"
    assert job.interval_seconds == 45
