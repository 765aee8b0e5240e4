from __future__ import annotations

from django_tasks import task


@task()
def recover_paid_orders_task() -> dict[str, int]:
    from .actions import recover_paid_orders

    result = recover_paid_orders()
    return {"done": result.done, "errors": result.errors}


@task()
def expire_unpaid_orders_task() -> dict[str, int]:
    from .actions import expire_unpaid_orders

    result = expire_unpaid_orders()
    return {"done": result.done, "errors": result.errors}
