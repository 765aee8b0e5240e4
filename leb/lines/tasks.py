from __future__ import annotations

from django.conf import settings
from django_tasks import task


@task()
def sweep_lines_task() -> dict[str, int]:
    from .actions import sweep_lines

    result = sweep_lines(batch_size=settings.SWEEP_BATCH_SIZE)
    return {
        "lines": result.lines,
        "transitions": result.transitions,
        "terminated": result.terminated,
        "numbers_released": result.numbers_released,
    }
