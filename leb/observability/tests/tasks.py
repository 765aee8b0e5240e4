"""A task the tests enqueue from a request; the worker imports it by path."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django_tasks import task

from leb.observability import requestid

logger = logging.getLogger("leb.observability.tests")

# The worker runs in the test process (call_command), so it can record here.
SEEN: list[str] = []


@task()
def note_request_id(label: str) -> str:
    SEEN.append(requestid.get())
    logger.info("task ran for %s", label)
    return label


@task()
def count_run(label: str) -> int:
    """Counts its runs in the cache (Redis in the multi-process test)."""
    key = f"runs:{label}"
    cache.add(key, 0, 3600)
    return int(cache.incr(key))
