"""Background delivery of the simulator's progress notifications to leb's
handleDownloadProgressInfo endpoint, with retries, at least once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import requests
from django.conf import settings
from django.urls import reverse
from django_tasks import task

from leb.common import clock

from .notifications import SECRET_HEADER, notification_secret

logger = logging.getLogger(__name__)

# (url, body, headers) -> HTTP status; 0 when nothing answered.
Transport = Callable[[str, bytes, dict[str, str]], int]
MAX_ATTEMPTS = 6


def http_transport(url: str, body: bytes, headers: dict[str, str]) -> int:
    try:
        return requests.post(url, data=body, headers=headers, timeout=10).status_code
    except requests.RequestException as exc:
        logger.warning("progress notification to %s failed: %s", url, type(exc).__name__)
        return 0


_transport: Transport = http_transport


@contextmanager
def use_transport(transport: Transport) -> Iterator[None]:
    """Deliver through another transport (tests, `leb esim --now`)."""
    global _transport
    previous, _transport = _transport, transport
    try:
        yield
    finally:
        _transport = previous


def progress_url() -> str:
    return settings.SITE_URL.rstrip("/") + reverse("provisioning:progress")


@task()
def deliver_progress(body: str, attempt_no: int = 1) -> str:
    headers = {
        "Content-Type": "application/json",
        "X-Admin-Protocol": "gsma/rsp/v2.2.0",
        SECRET_HEADER: notification_secret(),
    }
    status = _transport(progress_url(), body.encode(), headers)
    if 200 <= status < 300:
        return "delivered"
    if 400 <= status < 500:
        logger.error("progress notification refused by leb (status %s)", status)
        return f"refused (status {status})"
    if attempt_no >= MAX_ATTEMPTS:
        logger.error("progress notification given up after %d attempts", attempt_no)
        return "gave up"
    delay = timedelta(seconds=min(30 * 2 ** (attempt_no - 1), 3600))
    deliver_progress.using(run_after=clock.now() + delay).enqueue(body, attempt_no + 1)
    return f"retrying (status {status})"
