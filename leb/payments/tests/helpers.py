"""Helpers for the payment tests: run queued sandbox webhooks like a worker."""

from __future__ import annotations

from typing import Any


def pending_webhooks() -> list[Any]:
    from django_tasks_db.models import DBTaskResult

    return list(
        DBTaskResult.objects.filter(
            task_path="leb.payments.tasks.deliver_sandbox_webhook", status="READY"
        ).order_by("enqueued_at")
    )


def deliver_pending_webhooks() -> list[str]:
    """Run every queued sandbox webhook delivery once, like a worker would."""
    from leb.payments.tasks import deliver_sandbox_webhook

    results = []
    for row in pending_webhooks():
        row.status = "SUCCESSFUL"
        row.save(update_fields=["status"])
        results.append(deliver_sandbox_webhook.call(*row.args_kwargs["args"]))
    return results
