"""SMS notifications through the real Twilio SDK, with only its HTTP layer
replaced by a recorder."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from leb.notifications.actions import notify
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Notification, Reason, Status
from leb.sms.backends import twilio as twilio_backend
from leb.sms.tests.test_twilio import SID, RecordingHttpClient, created

from .helpers import receipt_context

pytestmark = pytest.mark.django_db

HTTP = RecordingHttpClient(201, created())


class RecordingTwilioBackend(twilio_backend.SmsBackend):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(http_client=HTTP, **kwargs)


@pytest.fixture(autouse=True)
def _twilio(settings: Any) -> None:
    settings.SMS_BACKEND = f"{__name__}.RecordingTwilioBackend"
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = "secret-token"
    settings.TWILIO_SMS_FROM = "+15005550006"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    HTTP.requests.clear()


def queue(make_line: Any, now: datetime) -> Any:
    line = make_line()
    notify(
        kind="topup_succeeded",
        context=receipt_context(datetime(2026, 12, 28, tzinfo=UTC)),
        dedupe_key="t",
        line=line,
        now=now,
    )
    return line


def test_an_sms_notification_goes_through_twilio(make_line: Any, now: datetime) -> None:
    # given
    HTTP.status, HTTP.body = 201, created("SM" + "9" * 32)
    line = queue(make_line, now)

    # when
    deliver_due_notifications(now)

    # then
    row = Notification.objects.get()
    assert row.status == Status.SENT
    assert row.provider_message_id == "SM" + "9" * 32
    assert HTTP.requests[0]["data"]["To"] == line.msisdn
    assert "2026-0000042" in HTTP.requests[0]["data"]["Body"]


def test_twilio_refusing_the_number_is_recorded_as_final_failure(
    make_line: Any, now: datetime
) -> None:
    # given Twilio answers 400 (invalid number)
    HTTP.status, HTTP.body = 400, {"code": 21211, "message": "Invalid 'To'", "status": 400}
    queue(make_line, now)

    # when
    result = deliver_due_notifications(now)

    # then no retry helps: failed at once, with the provider's code and no secret
    row = Notification.objects.get()
    assert result.failed == 1
    assert (row.status, row.reason, row.attempts) == (Status.FAILED, Reason.DELIVERY_FAILED, 1)
    assert "21211" in row.last_error
    assert "secret-token" not in row.last_error
