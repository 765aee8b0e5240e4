"""Background delivery of sandbox webhooks, with retries, the way a real
gateway notifies a merchant: at least once, signed at send time."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django_tasks import task

from leb.common import clock

logger = logging.getLogger(__name__)

# (url, body, headers) -> HTTP status; 0 when nothing answered.
Transport = Callable[[str, bytes, dict[str, str]], int]


def urllib_transport(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        logger.warning("sandbox webhook POST to %s failed: %s", url, exc)
        return 0


_transport: Transport = urllib_transport


@contextmanager
def use_transport(transport: Transport) -> Iterator[None]:
    """Deliver through another transport (tests post through the test client)."""
    global _transport
    previous, _transport = _transport, transport
    try:
        yield
    finally:
        _transport = previous


def max_attempts() -> int:
    return int(getattr(settings, "PAYMENTS_WEBHOOK_MAX_ATTEMPTS", 8))


def retry_delay(attempt_no: int) -> timedelta:
    base = int(getattr(settings, "PAYMENTS_WEBHOOK_RETRY_SECONDS", 30))
    return timedelta(seconds=min(base * 2 ** (attempt_no - 1), 6 * 3600))


@task()
def deliver_sandbox_webhook(body: str, attempt_no: int = 1) -> str:
    from django.urls import reverse

    from .actions import absolute_url
    from .providers.sandbox import SIGNATURE_HEADER, sign

    raw = body.encode()
    url = absolute_url(reverse("payments:webhook", args=["sandbox"]))
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(raw, int(clock.now().timestamp())),
    }
    status = _transport(url, raw, headers)
    if 200 <= status < 300:
        return "delivered"
    event_id = json.loads(body).get("id", "?")
    if attempt_no >= max_attempts():
        logger.error(
            "sandbox webhook %s not delivered after %d attempts (last status %s)",
            event_id,
            attempt_no,
            status,
        )
        return "gave up"
    deliver_sandbox_webhook.using(run_after=clock.now() + retry_delay(attempt_no)).enqueue(
        body, attempt_no + 1
    )
    return f"retrying (status {status})"


@task()
def reconcile_payments_task() -> dict[str, int]:
    from .actions import reconcile_open_attempts

    result = reconcile_open_attempts()
    return {"checked": result.checked, "settled": result.settled, "errors": result.errors}


@task()
def reconcile_refunds_task() -> dict[str, int]:
    from .actions import reconcile_pending_refunds

    result = reconcile_pending_refunds()
    return {
        "checked": result.checked,
        "confirmed": result.confirmed,
        "failed": result.failed,
        "pending": result.pending,
        "skipped": result.skipped,
        "errors": result.errors,
    }
