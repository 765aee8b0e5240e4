from __future__ import annotations

from django_tasks import task

from .actions import expire_agent_topups, purge_nonces


@task()
def expire_agent_topups_task() -> int:
    """Periodic: release two-step reservations past their confirm-by time and
    forget signature nonces older than the window."""
    purge_nonces()
    return expire_agent_topups()
