"""A task enqueued in a transaction exists only if the transaction commits:
the database task backend writes its row in that same transaction."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import transaction
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from . import tasks


class Abort(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_in_a_rolled_back_transaction_never_runs() -> None:
    # given
    with pytest.raises(Abort), transaction.atomic():
        tasks.record_run.enqueue("rolled back")
        raise Abort

    # when
    call_command("worker", "--batch", "--no-scheduler")

    # then
    assert not DBTaskResult.objects.exists()
    assert tasks.RUNS == []


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_in_a_committed_transaction_runs() -> None:
    # given
    with transaction.atomic():
        result = tasks.record_run.enqueue("committed")

    # when
    call_command("worker", "--batch", "--no-scheduler")

    # then
    row = DBTaskResult.objects.get(id=result.id)
    assert row.status == TaskResultStatus.SUCCESSFUL
    assert row.return_value == "committed"
    assert tasks.RUNS == ["committed"]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_enqueued_in_a_rolled_back_transaction_is_never_stored() -> None:
    # given
    from leb.notifications.tasks import deliver_notifications_task

    # when
    with pytest.raises(Abort), transaction.atomic():
        deliver_notifications_task.enqueue([1])
        raise Abort

    # then
    assert not DBTaskResult.objects.filter(
        task_path__endswith="deliver_notifications_task"
    ).exists()
