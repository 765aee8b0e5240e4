"""Twilio Programmable Messaging, through the official SDK.

    SMS_BACKEND = "leb.sms.backends.twilio.SmsBackend"
    TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN
    TWILIO_MESSAGING_SERVICE_SID (preferred) or TWILIO_SMS_FROM (an E.164 sender)

Errors carry Twilio's status and error code, never the credentials or the
message text (it may hold a one-time code).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from leb.sms import SmsError, SmsMessage

from .base import BaseSmsBackend


class SmsBackend(BaseSmsBackend):
    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        http_client: HttpClient | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.account_sid = account_sid if account_sid is not None else settings.TWILIO_ACCOUNT_SID
        self.auth_token = auth_token if auth_token is not None else settings.TWILIO_AUTH_TOKEN
        self.from_number = from_number if from_number is not None else settings.TWILIO_SMS_FROM
        self.messaging_service_sid = (
            messaging_service_sid
            if messaging_service_sid is not None
            else settings.TWILIO_MESSAGING_SERVICE_SID
        )
        self.http_client = http_client or TwilioHttpClient(
            timeout=timeout if timeout is not None else settings.SMS_HTTP_TIMEOUT
        )

    def send(self, message: SmsMessage) -> str:
        if not self.account_sid or not self.auth_token:
            raise SmsError("Twilio credentials are not set", permanent=True)
        if not self.messaging_service_sid and not self.from_number:
            raise SmsError("neither a Twilio sender nor a messaging service is set", permanent=True)
        client = Client(self.account_sid, self.auth_token, http_client=self.http_client)
        options: dict[str, Any] = {"to": message.to, "body": message.text}
        if self.messaging_service_sid:
            options["messaging_service_sid"] = self.messaging_service_sid
        else:
            options["from_"] = self.from_number
        try:
            sent = client.messages.create(**options)
        except TwilioRestException as exc:
            # 4xx other than rate limiting: this message will never be accepted.
            permanent = 400 <= exc.status < 500 and exc.status != 429
            raise SmsError(
                f"Twilio refused the message: HTTP {exc.status}, error {exc.code}",
                permanent=permanent,
            ) from exc
        except (TwilioException, OSError) as exc:
            raise SmsError(f"Twilio unreachable: {type(exc).__name__}") from exc
        return str(sent.sid)
