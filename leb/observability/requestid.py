"""The id that ties together the log lines of one request and of the tasks
it enqueued. It lives in a context variable: set by the middleware for a
request, by the task signals for a task run."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-ID"
# A proxy's or client's id is kept only if it is a plain token: it goes into
# log lines and a response header, so no spaces, quotes or control characters.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}")

_current: ContextVar[str] = ContextVar("leb_request_id", default="")


def new_id() -> str:
    return uuid.uuid4().hex


def accept(raw: str | None) -> str:
    """The caller's id if it is sane, else a new one."""
    if raw and SANE_ID.fullmatch(raw):
        return raw
    return new_id()


def get() -> str:
    return _current.get()


def set_current(request_id: str) -> None:
    _current.set(request_id)


@contextmanager
def bound(request_id: str) -> Iterator[str]:
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)
