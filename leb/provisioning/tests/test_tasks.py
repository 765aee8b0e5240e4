"""The simulator's notification delivery: at least once, with retries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leb.provisioning import tasks

from .helpers import pending_notifications

pytestmark = pytest.mark.django_db

BODY = json.dumps({"iccid": "x"})


def answering(status: int) -> Any:
    seen: list[dict[str, str]] = []

    def transport(url: str, body: bytes, headers: dict[str, str]) -> int:
        seen.append(headers)
        return status

    transport.seen = seen  # type: ignore[attr-defined]
    return transport


def test_delivery_sends_the_secret_and_the_protocol_header(settings: Any) -> None:
    transport = answering(204)
    with tasks.use_transport(transport):
        assert tasks.deliver_progress.call(BODY) == "delivered"
    headers = transport.seen[0]
    assert headers["X-Leb-Notification-Secret"] == settings.SMDP_NOTIFICATION_SECRET
    assert headers["X-Admin-Protocol"].startswith("gsma/rsp/v2.")
    assert tasks.progress_url().endswith("/gsma/rsp2/es2plus/handleDownloadProgressInfo")


def test_a_server_error_is_retried_later() -> None:
    with tasks.use_transport(answering(503)):
        assert tasks.deliver_progress.call(BODY) == "retrying (status 503)"
    [row] = pending_notifications()
    assert row.args_kwargs["args"] == [BODY, 2]


def test_a_refusal_is_not_retried() -> None:
    with tasks.use_transport(answering(401)):
        assert tasks.deliver_progress.call(BODY) == "refused (status 401)"
    assert pending_notifications() == []


def test_delivery_gives_up_after_the_last_attempt() -> None:
    with tasks.use_transport(answering(0)):
        assert tasks.deliver_progress.call(BODY, tasks.MAX_ATTEMPTS) == "gave up"
    assert pending_notifications() == []


def test_http_transport_reports_no_answer_as_zero(monkeypatch: Any) -> None:
    import requests

    def boom(*args: Any, **kwargs: Any) -> None:
        raise requests.ConnectionError("down")

    monkeypatch.setattr(requests, "post", boom)
    assert tasks.http_transport("http://127.0.0.1:9/x", b"{}", {}) == 0
