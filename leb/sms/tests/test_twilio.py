from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from twilio.http import HttpClient
from twilio.http.response import Response

from leb.sms import SmsError, SmsMessage, send_sms
from leb.sms.backends.twilio import SmsBackend

SID = "AC" + "0" * 32


class RecordingHttpClient(HttpClient):
    """Stands in for Twilio's servers: records each request, answers with a
    canned response. Everything above the HTTP layer is the real SDK."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(logger=logging.getLogger(__name__), is_async=False)
        self.status = status
        self.body = body
        self.requests: list[dict[str, Any]] = []

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        self.requests.append({"method": method, "uri": uri, "data": data, "auth": auth})
        return Response(self.status, json.dumps(self.body))


def created(sid: str = "SM" + "1" * 32) -> dict[str, Any]:
    return {"sid": sid, "status": "queued", "to": "+85291234567", "body": "hi"}


def test_twilio_sends_through_the_messages_api() -> None:
    # given
    http = RecordingHttpClient(201, created())
    backend = SmsBackend(
        account_sid=SID, auth_token="secret-token", from_number="+15005550006", http_client=http
    )

    # when
    message_id = send_sms("+85291234567", "Your top-up went through.", backend=backend)

    # then
    assert message_id == "SM" + "1" * 32
    (request,) = http.requests
    assert request["method"] == "POST"
    assert request["uri"] == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["auth"] == (SID, "secret-token")
    assert request["data"]["To"] == "+85291234567"
    assert request["data"]["From"] == "+15005550006"
    assert request["data"]["Body"] == "Your top-up went through."


def test_a_messaging_service_replaces_the_sender() -> None:
    # given
    http = RecordingHttpClient(201, created())
    backend = SmsBackend(
        account_sid=SID,
        auth_token="t",
        from_number="+15005550006",
        messaging_service_sid="MG" + "2" * 32,
        http_client=http,
    )

    # when
    send_sms("+85291234567", "hello", backend=backend)

    # then
    data = http.requests[0]["data"]
    assert data["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in data


def test_a_refused_message_is_a_permanent_error_without_secrets() -> None:
    # given Twilio answers 400: invalid "To" number
    http = RecordingHttpClient(
        400, {"code": 21211, "message": "The 'To' number is not valid.", "status": 400}
    )
    backend = SmsBackend(
        account_sid=SID, auth_token="secret-token", from_number="+1500", http_client=http
    )

    # when
    with pytest.raises(SmsError) as raised:
        send_sms("+85291234567", "code 123456", backend=backend)

    # then
    assert raised.value.permanent
    assert "21211" in str(raised.value)
    assert "secret-token" not in str(raised.value)
    assert "123456" not in str(raised.value)


def test_rate_limiting_is_worth_a_retry() -> None:
    http = RecordingHttpClient(429, {"code": 20429, "message": "Too many requests", "status": 429})
    backend = SmsBackend(account_sid=SID, auth_token="t", from_number="+1500", http_client=http)
    with pytest.raises(SmsError) as raised:
        send_sms("+85291234567", "hello", backend=backend)
    assert not raised.value.permanent


def test_missing_credentials_are_refused_before_any_request() -> None:
    http = RecordingHttpClient(201, created())
    backend = SmsBackend(account_sid="", auth_token="", from_number="+1500", http_client=http)
    with pytest.raises(SmsError):
        send_sms("+85291234567", "hello", backend=backend)
    assert http.requests == []


def test_settings_configure_the_backend(settings: Any) -> None:
    # given
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = "tok"
    settings.TWILIO_SMS_FROM = "+15005550006"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    http = RecordingHttpClient(201, created())

    # when
    SmsBackend(http_client=http).send(SmsMessage(to="+85291234567", text="x"))

    # then
    assert http.requests[0]["auth"] == (SID, "tok")
    assert http.requests[0]["data"]["From"] == "+15005550006"
