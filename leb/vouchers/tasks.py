from __future__ import annotations

from django_tasks import task

from .actions import expire_vouchers


@task()
def expire_vouchers_task() -> int:
    """Periodic: mark vouchers past their expiry date as expired."""
    return expire_vouchers().vouchers
