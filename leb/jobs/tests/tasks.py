"""Tasks the tests enqueue; the worker imports them by path like any other."""

from __future__ import annotations

from django_tasks import task

# The worker runs in the test process (call_command), so it can record here.
RUNS: list[str] = []


@task()
def record_run(label: str = "scheduled") -> str:
    RUNS.append(label)
    return label
