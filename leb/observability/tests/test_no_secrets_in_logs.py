"""Secrets never reach the logs or the outbox. One run through every door a
secret comes in by, with every logger at DEBUG (LEB_LOG_LEVEL=DEBUG) and the
request log on; then each record (message, arguments, extra fields,
exception) and its formatted line in both formats leb writes
(LEB_LOG_FORMAT=text and json), and every outbox row once delivered, are
searched for the passwords, codes, PINs, tokens, keys and card numbers used."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from django.conf import settings
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

import leb.sms
from leb.accounts.actions import do_register_user
from leb.agents.actions import (
    do_approve_deposit,
    do_create_agent,
    do_create_api_key,
    do_record_deposit,
)
from leb.agents.tests.helpers import PORTAL_PASSWORD, SignedClient, add_member
from leb.api.actions import do_create_personal_token
from leb.catalog.models import FreeAmountRule
from leb.common import clock
from leb.notifications.models import Notification
from leb.observability.logs import JsonFormatter, RequestIdFilter
from leb.payments.models import PaymentAttempt
from leb.telephony.tests.caller import TOKEN as TWILIO_TOKEN
from leb.telephony.tests.caller import FakeTwilio
from leb.testing import bearer, deliver_outbox
from leb.topups.models import TopUpOrder
from leb.vouchers.actions import do_activate_batch, do_generate_batch
from leb.vouchers.models import Distributor

pytestmark = pytest.mark.django_db

PASSWORD = "Flow-passphrase-7f3a9c"
WRONG_PASSWORD = "Wrong-passphrase-b81d2e"
NEW_PASSWORD = "Fresh-passphrase-5c0e44"
PHONE_PASSWORD = "Phone-passphrase-93aa1f"
CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
WRONG_PIN = "4111111111111111"


class Captured(logging.Handler):
    """Keeps every record, with the request id the filters give it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured(settings: Any) -> Iterator[Captured]:
    settings.LOG_REQUESTS = True
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def texts_of(record: logging.LogRecord) -> list[str]:
    """Everything of a record a log line or a log shipper could carry."""
    configured = cast(dict[str, Any], settings.LOGGING)
    plain = logging.Formatter(configured["formatters"]["plain"]["format"])
    found = [
        str(record.msg),
        repr(record.args),
        repr(vars(record)),
        plain.format(record),
        JsonFormatter().format(record),
    ]
    if record.exc_info:
        found.append(plain.formatException(record.exc_info))
    return found


def variants(secret: str) -> set[str]:
    """A secret as typed and as a program might print it."""
    bare = secret.replace(" ", "")
    return {secret, bare, json.dumps(secret)[1:-1], " ".join(re.findall(".{1,4}", bare))}


def leaks(haystacks: list[str], secrets: dict[str, str]) -> list[str]:
    found = []
    for name, secret in secrets.items():
        for form in variants(secret):
            # Codes are short: only a run of exactly those digits counts.
            pattern = rf"(?<!\d){re.escape(form)}(?!\d)" if form.isdigit() else re.escape(form)
            if any(re.search(pattern, text) for text in haystacks):
                found.append(name)
                break
    return found


class WebhookTransport:
    """The sandbox gateway's webhooks, delivered through the test client."""

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        path = url.removeprefix(settings.SITE_URL.rstrip("/"))
        extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = Client().post(
            path, data=body, content_type=headers["Content-Type"], headers=extra
        )
        return int(response.status_code)


def voucher_pins(tmp_path: Path, now: datetime, quantity: int) -> list[str]:
    FreeAmountRule.objects.get_or_create(
        currency="HKD",
        defaults={"min_amount": 1000, "max_amount": 100000, "tiers": [[1000, 30], [5000, 180]]},
    )
    made = do_generate_batch(
        code="LOGS",
        distributor=Distributor.objects.create(code="logs", name="Log Shop"),
        quantity=quantity,
        expires_on=(now + timedelta(days=365)).date(),
        out=tmp_path / "logs.csv",
        currency="HKD",
        value=10000,
        plan=None,
        luhn=True,
        actor="staff:test",
        now=now,
    )
    do_activate_batch(made.batch, actor="staff:test", now=now)
    with (tmp_path / "logs.csv").open(newline="", encoding="utf-8") as stream:
        return [row["pin"] for row in csv.DictReader(stream)]


def texted_code() -> str:
    deliver_outbox()
    match = re.search(r"\b(\d{6})\b", leb.sms.outbox[-1].text)
    assert match is not None
    return match.group(1)


def test_a_full_run_logs_no_secret(
    captured: Captured,
    settings: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    tmp_path: Path,
    django_user_model: Any,
) -> None:
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.PHONE_PUBLIC_URL = "http://testserver"
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    leb.sms.outbox.clear()
    secrets: dict[str, str] = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "new password": NEW_PASSWORD,
        "phone account's password": PHONE_PASSWORD,
        "agent portal password": PORTAL_PASSWORD,
        "card number": CARD,
        "declined card number": DECLINED_CARD,
        "wrong PIN": WRONG_PIN,
        "Twilio auth token": TWILIO_TOKEN,
    }
    from leb.payments.tasks import use_transport

    with clock.frozen(now), use_transport(WebhookTransport()):
        # sign-up and sign-in with a password (one wrong try first)
        web = Client()
        registered = web.post(
            reverse("accounts:register"),
            {"identifier": "flow@example.com", "password1": PASSWORD, "password2": PASSWORD},
        )
        assert registered.status_code == 302
        user = django_user_model.objects.get(email="flow@example.com")
        web = Client()
        refused = web.post(
            reverse("accounts:login"),
            {"identifier": "flow@example.com", "password": WRONG_PASSWORD},
        )
        assert refused.status_code == 200
        signed_in = web.post(
            reverse("accounts:login"), {"identifier": "flow@example.com", "password": PASSWORD}
        )
        assert signed_in.status_code == 302

        # a personal API token orders top-ups of the user's line, paid on the
        # web with test cards in the sandbox (the first one declined)
        line = make_line(owner=user)
        _token, clear_token = do_create_personal_token(user, "flow laptop")
        secrets["API token"] = clear_token
        for attempt_no, number in enumerate((DECLINED_CARD, CARD), 1):
            created = Client().post(
                "/api/v1/orders",
                {"number": line.msisdn, "plan_code": hkd_plan.code},
                content_type="application/json",
                headers={"Idempotency-Key": f"logs-flow-{attempt_no}"},
                **bearer(clear_token),
            )
            assert created.status_code == 201, created.content
            order = TopUpOrder.objects.get(public_id=created.json()["public_id"])
            start = web.post(
                reverse("payments:start", args=[order.public_id]) + "?provider=sandbox"
            )
            assert start.status_code == 302, start.content
            attempt = PaymentAttempt.objects.filter(order=order).latest("pk")
            web.post(
                reverse("payments:sandbox_checkout", args=[attempt.public_id]),
                {"number": number, "expiry": "12/30", "cvc": "737", "name": "Chan Tai Man"},
            )
            web.get(reverse("payments:return", args=[attempt.public_id]))
        order.refresh_from_db()
        assert order.status == "fulfilled", order.status

        # a voucher PIN on the web (a wrong one first) and one over the IVR
        pins = voucher_pins(tmp_path, now, quantity=2)
        secrets.update({"web voucher PIN": pins[0], "IVR voucher PIN": pins[1]})
        guest = Client()
        guest.post(reverse("vouchers:redeem"), {"number": line.msisdn, "pin": WRONG_PIN})
        redeemed = guest.post(reverse("vouchers:redeem"), {"number": line.msisdn, "pin": pins[0]})
        assert redeemed.status_code == 302, redeemed.content
        call = FakeTwilio(caller=line.msisdn)
        call.start()
        call.press("3")  # English
        call.press("1")  # a voucher
        reply = call.press(pins[1])
        assert "2027" in reply.text or "balance" in reply.text.lower(), reply.says

        # a password reset by a texted code (a wrong code first)
        do_register_user(
            email="", phone="+85294123456", password=PHONE_PASSWORD, language="en", verified=True
        )
        reset = Client()
        reset.post(reverse("accounts:password_reset_sms"), {"phone": "9412 3456"})
        code = texted_code()
        secrets["reset code"] = code
        wrong_code = f"{(int(code) + 1) % 1_000_000:06d}"
        form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        reset.post(reverse("accounts:password_reset_sms_code"), {"code": wrong_code, **form})
        done = reset.post(reverse("accounts:password_reset_sms_code"), {"code": code, **form})
        assert done.status_code == 302, done.content
        assert Client().login(username="+85294123456", password=NEW_PASSWORD)

        # an agent: a signed API sale, and a member signing in with password and TOTP
        staff = [
            django_user_model.objects.create_superuser(f"fin-{n}", f"fin-{n}@example.com", "pw")
            for n in "ab"
        ]
        agent = do_create_agent(
            actor="staff:test",
            legal_name="Log Phones Ltd",
            display_name="Log Phones",
            region="HK",
            currency="HKD",
        )
        deposit = do_record_deposit(
            agent, amount=100_000, currency="HKD", bank_reference="BANK-L", staff=staff[0], now=now
        )
        do_approve_deposit(deposit, staff=staff[1], now=now)
        new_key = do_create_api_key(agent, actor="staff:test", now=now)
        secrets["agent API secret"] = new_key.secret
        api = SignedClient(Client(), new_key.key.key_id, new_key.secret)
        sold = api.post(
            "/agent/v1/topups",
            {"external_id": "logs-1", "msisdn": line.msisdn, "plan_code": hkd_plan.code},
        )
        assert sold.status_code in (200, 201), sold.content
        member = add_member(agent, "till-logs", "seller")
        device = TOTPDevice.objects.get(user=member)
        secrets["TOTP key"] = device.key
        portal = Client()
        login = portal.post(
            reverse("accounts:login"),
            {
                "identifier": "till-logs@example.com",
                "password": PORTAL_PASSWORD,
                "next": "/agent/portal/",
            },
        )
        one_time = f"{totp(device.bin_key):06d}"
        secrets["TOTP code"] = one_time
        verified = portal.post(login["Location"], {"code": one_time})
        assert verified["Location"] == "/agent/portal/", verified

        deliver_outbox(now + timedelta(minutes=1))

    # then no log record, in any form, carries a secret
    assert len(captured.records) > 20, "the run logged (the request log is on)"
    logged = [text for record in captured.records for text in texts_of(record)]
    assert not leaks(logged, secrets), [
        (name, [t for t in logged if any(f in t for f in variants(secrets[name]))][:3])
        for name in leaks(logged, secrets)
    ]
    # and neither does any outbox row once delivered
    rows = [json.dumps(model_to_dict(row), default=str) for row in Notification.objects.all()]
    assert rows, "the run queued messages"
    assert not leaks(rows, secrets), leaks(rows, secrets)


def test_the_search_finds_a_secret_that_is_logged(captured: Captured) -> None:
    # the control: a secret in a message, an argument or an extra field is found
    logger = logging.getLogger("leb.test")
    logger.debug("pin %s", "1234567812345678")
    logger.info("nothing here", extra={"token": "leb_abcdef0123456789"})
    logged = [text for record in captured.records for text in texts_of(record)]
    assert leaks(logged, {"pin": "1234 5678 1234 5678", "token": "leb_abcdef0123456789"}) == [
        "pin",
        "token",
    ]
