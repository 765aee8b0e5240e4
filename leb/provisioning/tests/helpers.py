"""Helpers for the provisioning tests: EIDs, and running the simulator's
queued progress notifications through the test client, as a worker would."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.test import Client
from stdnum.iso7064 import mod_97_10


def make_eid(n: int) -> str:
    body = f"8904903200{n:020d}"
    return body + mod_97_10.calc_check_digits(body)


EID = make_eid(1)
OTHER_EID = make_eid(2)


class ClientTransport:
    def __init__(self) -> None:
        self.responses: list[Any] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        path = url.removeprefix(settings.SITE_URL.rstrip("/"))
        extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = Client().post(path, data=body, content_type="application/json", headers=extra)
        self.responses.append(response)
        return int(response.status_code)


def pending_notifications() -> list[Any]:
    from django_tasks_db.models import DBTaskResult

    return list(
        DBTaskResult.objects.filter(
            task_path="leb.provisioning.tasks.deliver_progress", status="READY"
        ).order_by("enqueued_at", "pk")
    )


def deliver_pending() -> list[str]:
    """Run every queued progress notification once, like a worker would."""
    from leb.provisioning.tasks import deliver_progress

    results = []
    for row in pending_notifications():
        row.status = "SUCCESSFUL"
        row.save(update_fields=["status"])
        results.append(deliver_progress.call(*row.args_kwargs["args"]))
    return results
