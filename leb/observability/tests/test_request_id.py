from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django_tasks_db.models import DBTaskResult

from leb.observability import requestid
from leb.observability.logs import JsonFormatter, RequestIdFilter

from . import tasks


def test_a_sane_request_id_is_kept_and_returned(client: Client) -> None:
    # when
    response = client.get("/healthz", HTTP_X_REQUEST_ID="edge-01:7f3a.9")

    # then
    assert response["X-Request-ID"] == "edge-01:7f3a.9"


@pytest.mark.parametrize(
    "raw",
    ["", "has space", 'quote"d', "x" * 129, "-leading-dash", "new\nline", "中文"],
)
def test_an_odd_request_id_is_replaced_by_a_new_one(client: Client, raw: str) -> None:
    # when
    response = client.get("/healthz", HTTP_X_REQUEST_ID=raw)

    # then
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.django_db
def test_every_response_carries_a_request_id(client: Client) -> None:
    # when
    page = client.get("/help/")
    missing = client.get("/no-such-page/")

    # then
    assert re.fullmatch(r"[0-9a-f]{32}", page["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", missing["X-Request-ID"])
    assert page["X-Request-ID"] != missing["X-Request-ID"]


def record(message: str, **extra: Any) -> logging.LogRecord:
    rec = logging.getLogger("leb.test").makeRecord(
        "leb.test", logging.INFO, __file__, 1, message, (), None, extra=extra
    )
    RequestIdFilter().filter(rec)
    return rec


def test_json_log_line_is_one_object_with_the_request_id() -> None:
    # given
    with requestid.bound("req-123"):
        rec = record("paid %s", status=200, note="好")
    rec.args = ("order 7",)

    # when
    line = JsonFormatter().format(rec)

    # then
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "paid order 7"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "leb.test"
    assert entry["request_id"] == "req-123"
    assert entry["status"] == 200
    assert entry["note"] == "好"
    assert entry["time"].endswith("+00:00")


def test_json_log_line_keeps_the_exception_on_one_line() -> None:
    # given
    try:
        raise ValueError("broken\nthing")
    except ValueError:
        import sys

        rec = logging.getLogger("leb.test").makeRecord(
            "leb.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )

    # when
    line = JsonFormatter().format(rec)

    # then
    assert "\n" not in line
    entry = json.loads(line)
    assert "ValueError: broken" in entry["exception"]
    assert entry["request_id"] is None


def test_json_log_line_survives_an_unserialisable_extra() -> None:
    # when
    line = JsonFormatter().format(record("odd", thing=object()))

    # then
    assert json.loads(line)["thing"].startswith("<object object")


def test_text_log_line_outside_a_request_shows_a_dash() -> None:
    # when
    rec = record("plain")

    # then
    assert rec.request_id == "-"  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_by_a_request_runs_under_its_request_id(
    client: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    settings.ROOT_URLCONF = "leb.observability.tests.urls"
    tasks.SEEN.clear()
    response = client.get("/test-enqueue", HTTP_X_REQUEST_ID="checkout-42")
    row = DBTaskResult.objects.get(id=response.json()["task"])
    assert row.args_kwargs == {"args": ["from-request"], "kwargs": {}, "request_id": "checkout-42"}

    # when
    with caplog.at_level(logging.INFO):
        call_command("worker", "--batch", "--no-scheduler")

    # then
    row.refresh_from_db()
    assert row.status == "SUCCESSFUL"
    assert row.return_value == "from-request"
    assert tasks.SEEN == ["checkout-42"]
    ran = [r for r in caplog.records if r.getMessage() == "task ran for from-request"]
    started = [r for r in caplog.records if f"id={row.id}" in r.getMessage()]
    assert len(ran) == 1
    assert len(started) == 2  # django_tasks' RUNNING and SUCCESSFUL lines
    for line in ran + started:
        assert json.loads(JsonFormatter().format(line))["request_id"] == "checkout-42"
    assert requestid.get() == ""


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_outside_a_request_gets_its_own_id() -> None:
    # given
    tasks.SEEN.clear()
    result = tasks.note_request_id.enqueue("periodic")
    assert "request_id" not in DBTaskResult.objects.get(id=result.id).args_kwargs

    # when
    call_command("worker", "--batch", "--no-scheduler")

    # then
    seen = tasks.SEEN
    assert seen == [f"task-{result.id}"]
