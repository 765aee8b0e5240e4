from __future__ import annotations

from django_tasks import task


@task()
def deliver_notifications_task(ids: list[int]) -> dict[str, int]:
    """Send these notifications now (enqueued when they are committed)."""
    from .delivery import deliver_due_notifications

    return deliver_due_notifications(ids=ids).as_dict()


@task()
def deliver_due_notifications_task() -> dict[str, int]:
    """The periodic safety net: everything due that is still waiting."""
    from .delivery import deliver_due_notifications

    return deliver_due_notifications().as_dict()
