from __future__ import annotations

from django.conf import settings
from django_tasks import task


@task()
def scan_reminders_task() -> dict[str, int]:
    from .actions import scan_reminders

    result = scan_reminders(batch_size=settings.REMINDERS_BATCH_SIZE)
    return {
        "sent": result.sent,
        "skipped": result.skipped,
        "notifications": result.notifications,
        "batches": result.batches,
    }
