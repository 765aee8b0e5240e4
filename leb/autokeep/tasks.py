"""Background jobs of the auto-keep app."""

from __future__ import annotations

from dataclasses import asdict

from django_tasks import task


@task()
def run_autokeep_task() -> dict[str, int]:
    from .actions import do_run_autokeep

    return asdict(do_run_autokeep())
