from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from leb.common import clock
from leb.jobs.models import PeriodicJob


@pytest.fixture
def sweep_job(now: datetime) -> PeriodicJob:
    return PeriodicJob.objects.create(
        name="lines-sweep",
        task_path="leb.lines.tasks.sweep_lines_task",
        interval_seconds=60,
        next_run_at=now + timedelta(minutes=1),
        last_run_at=now,
        last_enqueued_task_id="7a0f3c1e-0000-4000-8000-000000000001",
    )


@pytest.mark.django_db
def test_the_job_list_shows_next_and_last_run(admin_client: Client, sweep_job: PeriodicJob) -> None:
    # given
    url = reverse("admin:jobs_periodicjob_changelist")

    # when
    response = admin_client.get(url)

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "lines-sweep" in page
    assert "leb.lines.tasks.sweep_lines_task" in page
    assert sweep_job.last_enqueued_task_id in page


@pytest.mark.django_db
def test_the_task_path_is_read_only(admin_client: Client, sweep_job: PeriodicJob) -> None:
    # given
    url = reverse("admin:jobs_periodicjob_change", args=[sweep_job.pk])

    # when
    response = admin_client.get(url)

    # then
    assert response.status_code == 200
    assert 'name="task_path"' not in response.content.decode()
    assert 'name="next_run_at_0"' in response.content.decode()


@pytest.mark.django_db
def test_run_now_makes_the_job_due(
    admin_client: Client, sweep_job: PeriodicJob, now: datetime
) -> None:
    # given
    url = reverse("admin:jobs_periodicjob_changelist")

    # when
    with clock.frozen(now):
        response = admin_client.post(
            url, {"action": "run_now", "_selected_action": [sweep_job.pk]}, follow=True
        )

    # then
    assert response.status_code == 200
    sweep_job.refresh_from_db()
    assert sweep_job.next_run_at == now


@pytest.mark.django_db
def test_jobs_cannot_be_added_by_hand(admin_client: Client) -> None:
    # given
    url = reverse("admin:jobs_periodicjob_add")

    # when
    response = admin_client.get(url)

    # then
    assert response.status_code == 403
