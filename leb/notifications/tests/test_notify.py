from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.db import transaction

from leb.notifications.actions import (
    LineInfo,
    NotifyRequest,
    do_save_notification_preferences,
    notify,
    notify_many,
)
from leb.notifications.models import Channel, Notification, Reason, Status

from .helpers import make_user, receipt_context

pytestmark = pytest.mark.django_db


class Abort(Exception):
    pass


def test_notify_writes_one_row_per_enabled_channel(make_line: Any, now: datetime) -> None:
    # given a user with an email address and a mobile number
    user = make_user(phone="+85291234567", language="zh-hant")
    line = make_line(owner=user)

    # when
    rows = notify(
        kind="topup_succeeded",
        context=receipt_context(now),
        dedupe_key="order:1",
        line=line,
        now=now,
    )

    # then the line's owner gets an email and an SMS, in their language
    assert sorted(row.channel for row in rows) == [Channel.EMAIL, Channel.SMS]
    by_channel = {row.channel: row for row in rows}
    assert by_channel[Channel.EMAIL].destination == user.email
    assert by_channel[Channel.SMS].destination == "+85291234567"
    assert {row.language for row in rows} == {"zh-hant"}
    assert all(row.user_id == user.pk and row.line_id == line.pk for row in rows)
    assert all(row.status == Status.PENDING and row.next_attempt_at == now for row in rows)
    assert all(row.valid_until_snapshot == line.valid_until for row in rows)


def test_the_same_dedupe_key_twice_creates_one_row(make_line: Any, now: datetime) -> None:
    # given
    user = make_user()
    line = make_line(owner=user)
    notify(kind="topup_succeeded", context=receipt_context(now), dedupe_key="k", line=line, now=now)

    # when the same event is notified again (a re-run, a second worker)
    again = notify(
        kind="topup_succeeded",
        context=receipt_context(now),
        dedupe_key="k",
        line=line,
        now=now + timedelta(minutes=3),
    )

    # then
    assert Notification.objects.count() == 1
    assert [row.created_at for row in again] == [now]


def test_a_rolled_back_event_leaves_no_notification(make_line: Any, now: datetime) -> None:
    # given
    line = make_line(owner=make_user())

    # when the causing transaction fails after notify
    with pytest.raises(Abort), transaction.atomic():
        notify(kind="topup_succeeded", context={}, dedupe_key="x", line=line, now=now)
        raise Abort

    # then
    assert not Notification.objects.exists()


def test_a_line_without_owner_gets_an_sms_in_the_default_language(
    make_line: Any, now: datetime
) -> None:
    # given
    line = make_line()

    # when
    (row,) = notify(kind="topup_succeeded", context={}, dedupe_key="y", line=line, now=now)

    # then
    assert row.user_id is None
    assert row.recipient == f"line:{line.pk}"
    assert row.channel == Channel.SMS
    assert row.destination == line.msisdn
    assert row.language == "en"


def test_every_channel_off_still_records_the_message_for_the_centre(
    make_line: Any, now: datetime
) -> None:
    # given
    user = make_user(phone="+85291234568")
    do_save_notification_preferences(user, email_enabled=False, sms_enabled=False)
    line = make_line(owner=user)

    # when
    (row,) = notify(kind="topup_succeeded", context={}, dedupe_key="z", line=line, now=now)

    # then
    assert row.channel == Channel.CENTRE
    assert row.status == Status.SKIPPED
    assert row.reason == Reason.ALL_CHANNELS_OFF
    assert row.next_attempt_at is None


def test_opting_out_of_one_channel_keeps_the_others(make_line: Any, now: datetime) -> None:
    # given
    user = make_user(phone="+85291234569")
    do_save_notification_preferences(user, sms_enabled=False)

    # when
    rows = notify(
        kind="topup_succeeded", context={}, dedupe_key="o", line=make_line(owner=user), now=now
    )

    # then
    assert [row.channel for row in rows] == [Channel.EMAIL]


def test_preferred_sms_number_and_email_override_the_account_ones(
    make_line: Any, now: datetime
) -> None:
    # given
    user = make_user(phone="+85291234570")
    do_save_notification_preferences(
        user, sms_number="+447700900123", email_address="alerts@example.org"
    )

    # when
    rows = notify(kind="topup_succeeded", context={}, dedupe_key="p", user=user, now=now)

    # then
    assert {row.channel: row.destination for row in rows} == {
        Channel.EMAIL: "alerts@example.org",
        Channel.SMS: "+447700900123",
    }


def test_a_message_due_in_quiet_hours_waits_for_their_end(make_line: Any, now: datetime) -> None:
    # given quiet hours 22:00-08:00 in Hong Kong; now is 12:00 HKT, move to 23:30 HKT
    user = make_user()
    do_save_notification_preferences(user, quiet_start=time(22), quiet_end=time(8))
    late = now + timedelta(hours=11, minutes=30)

    # when
    (row,) = notify(kind="topup_succeeded", context={}, dedupe_key="q", user=user, now=late)

    # then it goes at 08:00 HKT the next morning (00:00 UTC)
    assert row.next_attempt_at == datetime(2026, 6, 2, 0, 0, tzinfo=now.tzinfo)


def test_context_must_be_json(make_line: Any, now: datetime) -> None:
    # given a context holding a datetime object instead of an ISO string
    user = make_user()

    # when / then
    with pytest.raises(TypeError):
        notify(kind="topup_succeeded", context={"valid_until": now}, dedupe_key="j", user=user)
    assert not Notification.objects.exists()


def test_notify_many_is_bulk_and_idempotent(
    make_line: Any, now: datetime, django_assert_max_num_queries: Any
) -> None:
    # given 30 owned lines and 10 lines without owner
    owned = [make_line(owner=make_user(phone=f"+852912300{i:02d}")) for i in range(30)]
    bare = [make_line() for _ in range(10)]
    requests = [
        NotifyRequest(
            kind="expiry_reminder",
            context={"valid_until": now.isoformat()},
            dedupe_key=f"reminder:{line.pk}:7",
            line_id=line.pk,
            deliver_by=now + timedelta(days=7),
            skip_if_validity_changed=True,
        )
        for line in owned + bare
    ]

    # when: a few queries whatever the number of requests
    with django_assert_max_num_queries(8):
        created = notify_many(requests, now=now)
    again = notify_many(requests, now=now)

    # then email + SMS per owner, one SMS per bare line; nothing new the second time
    assert created == 30 * 2 + 10
    assert again == 0
    assert Notification.objects.count() == 70
    assert Notification.objects.filter(deliver_by=now + timedelta(days=7)).count() == 70


def test_notify_many_takes_the_lines_the_caller_already_read(
    make_line: Any, now: datetime, django_assert_max_num_queries: Any
) -> None:
    # given two bare lines a job has just read (and locked), one of them with
    # a number that changed since it was created
    first, second = make_line(), make_line()
    known = {
        first.pk: LineInfo(first.pk, None, "+85291110000", first.valid_until),
        second.pk: LineInfo(second.pk, None, second.phone_number.msisdn, second.valid_until),
    }
    requests = [
        NotifyRequest(
            kind="expiry_reminder", context={}, dedupe_key=f"k:{line.pk}", line_id=line.pk
        )
        for line in (first, second)
    ]

    # when: the savepoint, the insert (on PostgreSQL sent past Django's
    # query log) and the delivery task, no lines query
    with django_assert_max_num_queries(4) as captured:
        created = notify_many(requests, known_lines=known, now=now)

    # then the rows go to the numbers the caller gave
    assert created == 2
    assert not any("lines_line" in query["sql"] for query in captured.captured_queries)
    assert set(Notification.objects.values_list("destination", flat=True)) == {
        "+85291110000",
        second.phone_number.msisdn,
    }


def test_notify_many_with_explicit_users(now: datetime) -> None:
    # given
    users = [make_user() for _ in range(3)]

    # when
    created = notify_many(
        [
            NotifyRequest(kind="card_expiring", context={}, dedupe_key="c", user_id=u.pk)
            for u in users
        ],
        now=now,
    )

    # then
    assert created == 3
    assert set(Notification.objects.values_list("user_id", flat=True)) == {u.pk for u in users}
