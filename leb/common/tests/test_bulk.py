"""Rows written many at a time read back exactly as the ORM would have
written them, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from leb.common.bulk import SQLITE_ROWS_PER_STATEMENT, insert_rows, update_rows
from leb.lines.models import Line, LineEvent, LineStatus
from leb.notifications.actions import COLUMNS as NOTIFICATION_COLUMNS
from leb.notifications.models import Notification

EVENT_COLUMNS = (
    "line_id",
    "kind",
    "from_status",
    "to_status",
    "happened_at",
    "recorded_at",
    "valid_until",
    "actor",
    "data",
)


@pytest.mark.django_db
def test_inserted_rows_read_back_with_their_types(make_line: Any, now: datetime) -> None:
    # given a line and two events, one with nested JSON and Chinese text, one with NULLs
    line = make_line()
    existing = list(LineEvent.objects.values_list("pk", flat=True))
    rows = [
        (
            line.pk,
            "status_changed",
            "active",
            "grace",
            now,
            now,
            now + timedelta(days=1),
            "sweep",
            {"note": "寬限期", "n": [1, 2], "ok": True},
        ),
        (line.pk, "note", "", "", now - timedelta(hours=1), now, None, "", {}),
    ]

    # when they are inserted in one call
    written = insert_rows(LineEvent, EVENT_COLUMNS, rows)

    # then both are there with the values given
    assert written == 2
    first, second = LineEvent.objects.exclude(pk__in=existing).order_by("-happened_at")
    assert (first.kind, first.from_status, first.to_status, first.actor) == (
        "status_changed",
        "active",
        "grace",
        "sweep",
    )
    assert first.happened_at == now and first.valid_until == now + timedelta(days=1)
    assert first.data == {"note": "寬限期", "n": [1, 2], "ok": True}
    assert second.valid_until is None and second.data == {}
    assert second.happened_at == now - timedelta(hours=1)


@pytest.mark.django_db
def test_more_rows_than_one_statement_takes(make_line: Any, now: datetime) -> None:
    line = make_line()
    count = SQLITE_ROWS_PER_STATEMENT * 2 + 7
    rows = [
        (line.pk, "note", "", "", now + timedelta(seconds=i), now, None, "", {"i": i})
        for i in range(count)
    ]
    assert insert_rows(LineEvent, EVENT_COLUMNS, rows) == count
    stored = sorted(e.data["i"] for e in LineEvent.objects.filter(line=line, kind="note"))
    assert stored == list(range(count))


@pytest.mark.django_db
def test_conflicting_rows_are_turned_away_and_not_counted(make_line: Any, now: datetime) -> None:
    # given one notification already stored under a dedupe key
    line = make_line()
    values = {
        "recipient": f"line:{line.pk}",
        "user_id": None,
        "line_id": line.pk,
        "channel": "sms",
        "destination": "+85291234567",
        "language": "en",
        "time_zone": "Asia/Hong_Kong",
        "kind": "expiry_soon",
        "context": {"days": 7},
        "status": "pending",
        "reason": "",
        "attempts": 0,
        "next_attempt_at": now,
        "deliver_by": None,
        "skip_if_validity_changed": False,
        "valid_until_snapshot": None,
        "last_error": "",
        "provider_message_id": "",
        "created_at": now,
        "finished_at": None,
        "secret_keys": "",
    }
    columns = NOTIFICATION_COLUMNS

    def row(key: str) -> tuple[Any, ...]:
        return tuple(key if c == "dedupe_key" else values[c] for c in columns)

    assert insert_rows(Notification, columns, [row("a")], ignore_conflicts=True) == 1

    # when the same key comes again with a new one
    written = insert_rows(Notification, columns, [row("a"), row("b")], ignore_conflicts=True)

    # then only the new one is written
    assert written == 1
    assert sorted(Notification.objects.values_list("dedupe_key", flat=True)) == ["a", "b"]
    assert Notification.objects.get(dedupe_key="b").context == {"days": 7}


@pytest.mark.django_db
def test_updated_rows_take_each_their_own_values(make_line: Any, now: datetime) -> None:
    # given three lines
    lines = [make_line() for _ in range(3)]
    untouched = lines[2]
    before = Line.objects.get(pk=untouched.pk)

    # when two of them get new values, one with a NULL
    update_rows(
        Line,
        ["status", "next_transition_at", "terminated_at"],
        [
            (lines[0].pk, LineStatus.GRACE, now + timedelta(days=3), None),
            (lines[1].pk, LineStatus.TERMINATED, None, now),
        ],
    )

    # then each has its own, and the third is as it was
    first, second, third = (Line.objects.get(pk=line.pk) for line in lines)
    assert (first.status, first.next_transition_at, first.terminated_at) == (
        LineStatus.GRACE,
        now + timedelta(days=3),
        None,
    )
    assert (second.status, second.next_transition_at, second.terminated_at) == (
        LineStatus.TERMINATED,
        None,
        now,
    )
    assert (third.status, third.next_transition_at) == (before.status, before.next_transition_at)


@pytest.mark.django_db
def test_nothing_to_write_is_no_statement(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert insert_rows(LineEvent, EVENT_COLUMNS, []) == 0
        update_rows(Line, ["status"], [])


@pytest.mark.django_db
def test_a_value_too_long_for_its_column_is_refused_not_cut(make_line: Any, now: datetime) -> None:
    from django.db import DataError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not enforce varchar lengths")
    line = make_line()
    too_long = "x" * 101  # actor is varchar(100)
    with pytest.raises(DataError), transaction.atomic():
        insert_rows(
            LineEvent,
            EVENT_COLUMNS,
            [(line.pk, "note", "", "", now, now, None, too_long, {})],
        )
    assert not LineEvent.objects.filter(actor__startswith="xxx").exists()
