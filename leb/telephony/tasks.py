from __future__ import annotations

from django_tasks import task


@task()
def purge_call_sessions_task() -> dict[str, int]:
    from .actions import purge_expired_call_sessions

    return {"deleted": purge_expired_call_sessions()}
