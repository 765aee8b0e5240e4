"""Messages to an address the person just gave or proved (queue_message): codes,
verification and reset links, support answers. Each is one outbox row written
in its event's transaction, delivered once, never after its deadline, and a
secret in it is kept only until the row is finished."""

from __future__ import annotations

import logging
import re
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

import leb.sms
from leb.accounts.models import CodePurpose, PhoneCode
from leb.accounts.verification import send_code
from leb.common import clock
from leb.notifications.actions import (
    do_cancel_notifications,
    do_save_notification_preferences,
    queue_message,
)
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Channel, Notification, Reason, Status
from leb.notifications.queries import notifications_of
from leb.support.actions import do_open_ticket, do_reply

from .helpers import make_user

pytestmark = pytest.mark.django_db

PHONE = "+85294123456"
CODE = "493817"


def queue_code(now: datetime, *, destination: str = PHONE, **extra: Any) -> Notification:
    values: dict[str, Any] = {
        "kind": "phone_code",
        "channel": Channel.SMS,
        "destination": destination,
        "language": "en",
        "context": {"purpose": "verify_phone", "code": CODE, "number": PHONE, "minutes": 10},
        "dedupe_key": "phone_code:1",
        "secret_keys": ("code",),
        "deliver_by": now + timedelta(minutes=10),
        "now": now,
    }
    values.update(extra)
    return queue_message(**values)


def test_a_code_is_texted_once_and_then_forgotten(now: datetime) -> None:
    # given a queued code
    row = queue_code(now)
    assert row.context["code"] == CODE and row.user is None

    # when the outbox runs twice
    first = deliver_due_notifications(now)
    second = deliver_due_notifications(now + timedelta(minutes=1))

    # then it was texted once, and the stored code is gone
    assert (first.sent, second.sent) == (1, 0)
    [text] = leb.sms.outbox
    assert text.to == PHONE
    assert text.text.startswith(f"leb: {CODE} is your code to verify +852 9412 3456.")
    assert "10 minutes" in text.text
    row.refresh_from_db()
    assert row.status == Status.SENT
    assert row.context == {"purpose": "verify_phone", "code": "", "number": PHONE, "minutes": 10}


def test_queueing_twice_with_one_key_keeps_one_row(now: datetime) -> None:
    first = queue_code(now)
    again = queue_code(now)
    assert first.pk == again.pk
    assert Notification.objects.count() == 1


def test_the_text_is_in_the_language_given(now: datetime) -> None:
    queue_code(now, language="zh-Hant")
    deliver_due_notifications(now)
    [text] = leb.sms.outbox
    assert CODE in text.text and "驗證碼" in text.text
    assert Notification.objects.get().language == "zh-hant"


def test_a_final_failure_forgets_the_code(now: datetime) -> None:
    # given a destination the gateway can never reach
    row = queue_code(now, destination="12345")

    # when
    result = deliver_due_notifications(now)

    # then
    assert result.failed == 1
    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert row.context["code"] == ""
    assert CODE not in row.last_error


def test_retries_keep_the_code_until_the_last_attempt(now: datetime, settings: Any) -> None:
    # given a gateway that fails every time
    settings.SMS_BACKEND = "leb.sms.backends.http.SmsBackend"
    settings.SMS_HTTP_URL = ""
    row = queue_code(now)

    # when it is retried (after 1 minute, 2, 4: the next would be past the deadline)
    moment = now
    outcomes = []
    for _ in range(4):
        result = deliver_due_notifications(moment)
        outcomes.append((result.retried, result.failed))
        row.refresh_from_db()
        if row.status == Status.PENDING:
            assert row.context["code"] == CODE and row.next_attempt_at is not None
            moment = row.next_attempt_at

    # then the last failure is final and empties the code
    assert outcomes == [(1, 0), (1, 0), (1, 0), (0, 1)]
    assert row.status == Status.FAILED
    assert row.context["code"] == ""


def test_a_code_is_never_sent_after_its_deadline(now: datetime, settings: Any) -> None:
    # given a code whose first attempt failed
    settings.SMS_BACKEND = "leb.sms.backends.http.SmsBackend"
    settings.SMS_HTTP_URL = ""
    row = queue_code(now, deliver_by=now + timedelta(seconds=90))
    deliver_due_notifications(now)

    # when the gateway is back only after the deadline
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    result = deliver_due_notifications(now + timedelta(minutes=5))

    # then nothing is texted and the code is gone
    row.refresh_from_db()
    assert leb.sms.outbox == []
    assert (result.sent, row.status, row.reason) == (0, Status.SKIPPED, Reason.TOO_LATE)
    assert row.context["code"] == ""


def test_a_row_never_delivered_before_its_deadline_is_closed_by_the_next_run(
    now: datetime,
) -> None:
    # given a code nobody delivered in time (the worker was down)
    row = queue_code(now)

    # when the worker comes back after the code expired
    deliver_due_notifications(now + timedelta(minutes=11))

    # then
    row.refresh_from_db()
    assert leb.sms.outbox == []
    assert row.status == Status.SKIPPED and row.context["code"] == ""


def test_cancelling_forgets_the_code(now: datetime) -> None:
    row = queue_code(now)
    assert do_cancel_notifications(dedupe_key="phone_code:1", now=now) == 1
    row.refresh_from_db()
    assert row.status == Status.CANCELLED and row.context["code"] == ""


def test_preferences_and_quiet_hours_do_not_hold_a_code_back(now: datetime) -> None:
    # given an account that switched SMS off and is in its quiet hours
    user = make_user(phone=PHONE, time_zone="UTC")
    do_save_notification_preferences(
        user, sms_enabled=False, quiet_start=time(0, 0), quiet_end=time(23, 59)
    )

    # when a code is queued for its number
    queue_code(now, user=user)
    deliver_due_notifications(now)

    # then it goes out at once, and the row belongs to no account
    assert [m.to for m in leb.sms.outbox] == [PHONE]
    row = Notification.objects.get()
    assert row.user is None and row.recipient == f"user:{user.pk}"


def test_a_code_never_shows_in_the_notification_centre(now: datetime) -> None:
    # given an account that asked for a code
    user = make_user(phone=PHONE)
    code_row = send_code(CodePurpose.VERIFY_PHONE, user, PHONE, now)
    client = Client()
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")

    # when the code is pending, then sent
    pending_page = client.get(reverse("notifications:centre")).content.decode()
    deliver_due_notifications(now)
    code = leb.sms.outbox[0].text.split()[1]
    sent_page = client.get(reverse("notifications:centre")).content.decode()

    # then neither page shows it, and the centre's query leaves such rows out
    assert code.isdigit() and len(code) == 6
    assert code not in pending_page and code not in sent_page
    assert not notifications_of(user).exists()
    Notification.objects.filter(dedupe_key=f"phone_code:{code_row.pk}").update(user=user)
    assert not notifications_of(user).exists()


def test_the_admin_hides_a_pending_code(now: datetime, django_user_model: Any) -> None:
    # given
    row = queue_code(now)
    staff = django_user_model.objects.create_superuser("ops-m", "ops-m@example.com", "pw-ops-123")
    client = Client()
    client.force_login(staff)

    # when
    detail = client.get(reverse("admin:notifications_notification_change", args=[row.pk]))
    listing = client.get(reverse("admin:notifications_notification_changelist"), {"q": PHONE})

    # then
    page = detail.content.decode()
    assert detail.status_code == 200 and listing.status_code == 200
    assert CODE not in page and CODE not in listing.content.decode()
    assert "••••••" in page and "verify_phone" in page


def test_the_code_never_reaches_the_log(
    now: datetime, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given everything logged, a delivery that fails, then one that works
    caplog.set_level(logging.DEBUG)
    settings.SMS_BACKEND = "leb.sms.backends.http.SmsBackend"
    settings.SMS_HTTP_URL = ""
    row = queue_code(now)
    deliver_due_notifications(now)
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    deliver_due_notifications(now + timedelta(minutes=1))

    # then
    row.refresh_from_db()
    assert row.status == Status.SENT
    assert CODE not in caplog.text


def test_the_code_and_its_message_roll_back_with_the_request(now: datetime) -> None:
    # given a user asking for a code, and the transaction failing after it
    user = make_user(phone=PHONE)

    # when
    with pytest.raises(RuntimeError), transaction.atomic():
        send_code(CodePurpose.VERIFY_PHONE, user, PHONE, now)
        raise RuntimeError

    # then neither the code nor its message exists, and nothing is texted
    deliver_due_notifications(now)
    assert not PhoneCode.objects.exists()
    assert not Notification.objects.exists()
    assert leb.sms.outbox == []


def test_delivery_is_queued_in_the_events_transaction(now: datetime) -> None:
    user = make_user(phone=PHONE)
    send_code(CodePurpose.VERIFY_PHONE, user, PHONE, now)
    # the delivery task is stored with the code, to run once that commits
    (message,) = Notification.objects.all()
    task = DBTaskResult.objects.get(task_path="leb.notifications.tasks.deliver_notifications_task")
    assert task.args_kwargs["args"] == [[message.pk]]
    # nothing is sent inside the request itself
    assert leb.sms.outbox == []


def test_a_guest_ticket_mails_its_private_link_once_and_forgets_it(now: datetime) -> None:
    # given a guest ticket
    ticket = do_open_ticket(
        user=None,
        subject="No signal",
        category="other",
        body="?",
        contact_email="g@example.com",
        now=now,
    )
    row = Notification.objects.get(kind="ticket_received")
    assert row.context["url"].startswith("https://") or row.context["url"].startswith("http")

    # when
    deliver_due_notifications(now)
    deliver_due_notifications(now)

    # then
    [message] = mail.outbox
    assert message.to == ["g@example.com"]
    assert ticket.reference in message.subject
    assert "/support/t/" in message.body
    row.refresh_from_db()
    assert row.context["url"] == "" and row.context["reference"] == ticket.reference


def test_a_ticket_and_its_message_roll_back_together(now: datetime) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        do_open_ticket(
            user=None, subject="Hi", category="other", body="?", contact_email="g@example.com"
        )
        raise RuntimeError
    assert not Notification.objects.exists()


def test_an_answer_to_an_account_keeps_its_link(now: datetime, django_user_model: Any) -> None:
    # given an account's ticket answered by staff
    user = make_user()
    staff = django_user_model.objects.create_user("agent-m", "agent-m@example.com", "x")
    staff.is_staff = True
    ticket = do_open_ticket(user=user, subject="Hi", category="other", body="?", now=now)

    # when
    do_reply(ticket, body="All good.", author=staff, as_staff=True, now=now)
    deliver_due_notifications(now)

    # then the account page link is no secret: the row keeps it
    [message] = mail.outbox
    assert message.to == [user.email] and "All good." in message.body
    row = Notification.objects.get(kind="ticket_answered")
    assert row.secret_keys == "" and row.context["url"].endswith(f"/{ticket.public_id}/")


def test_queue_message_refuses_what_it_cannot_send(now: datetime) -> None:
    with pytest.raises(ValueError):
        queue_code(now, channel=Channel.WEBHOOK)
    with pytest.raises(ValueError):
        queue_code(now, destination="")
    with pytest.raises(ValueError):
        queue_code(now, secret_keys=("pin",))
    assert not Notification.objects.exists()


def test_a_reset_link_is_not_kept_after_it_is_sent(now: datetime) -> None:
    # given an account with a proven address asking for a reset link
    user = make_user(email="reset@example.com")
    with clock.frozen(now):
        Client().post(reverse("accounts:password_reset"), {"email": "reset@example.com"})

    # when
    deliver_due_notifications(now)

    # then
    [message] = mail.outbox
    assert message.to == [user.email] and "/account/password-reset/" in message.body
    row = Notification.objects.get(kind="password_reset")
    assert row.context == {"reset_url": ""}
    assert row.deliver_by is not None and row.deliver_by > now


def test_a_binding_code_rolls_back_with_its_challenge(now: datetime, make_line: Any) -> None:
    from leb.mylines import binding
    from leb.mylines.models import BindingChallenge

    # given a user asking for a code for a line, and the transaction failing after it
    user, line = make_user(), make_line()
    with pytest.raises(RuntimeError), transaction.atomic():
        binding.send_challenge(user, line, line.iccid, line.msisdn, now, language="en")
        raise RuntimeError

    # then
    deliver_due_notifications(now)
    assert not BindingChallenge.objects.exists()
    assert not Notification.objects.exists()
    assert leb.sms.outbox == []


def test_a_binding_code_is_texted_once_and_forgotten(now: datetime, make_line: Any) -> None:
    from leb.mylines import binding

    # given
    user, line = make_user(), make_line()
    challenge = binding.send_challenge(user, line, line.iccid, line.msisdn, now, language="zh-hans")

    # when
    deliver_due_notifications(now)
    deliver_due_notifications(now)

    # then
    [text] = leb.sms.outbox
    assert text.to == line.msisdn
    found = re.search(r"\b(\d{6})\b", text.text)
    assert found is not None and binding.code_matches(challenge, found.group(1))
    row = Notification.objects.get(kind="line_binding_code")
    assert row.deliver_by == challenge.expires_at
    assert row.context["code"] == "" and row.user is None
