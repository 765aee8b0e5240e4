from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

import leb.sms
from leb.accounts.actions import do_register_user
from leb.accounts.models import PhoneCode
from leb.common import clock
from leb.notifications.models import Notification, Status
from leb.testing import deliver_outbox, delivered_texts

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery 42"
NEW = "a brand new passphrase 7"
PHONE = "+85294123456"
START = reverse("accounts:password_reset_sms")
CODE_PAGE = reverse("accounts:password_reset_sms_code")


@pytest.fixture
def phone_user() -> Any:
    return do_register_user(email="", phone=PHONE, password=PASSWORD, language="en", verified=True)


def texted_code() -> str:
    match = re.search(r"\b(\d{6})\b", delivered_texts()[-1].text)
    assert match is not None
    return match.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def ask(client: Client, phone: str = "9412 3456") -> Any:
    return client.post(START, {"phone": phone})


def enter(client: Client, code: str, first: str = NEW, second: str | None = None) -> Any:
    return client.post(
        CODE_PAGE, {"code": code, "new_password1": first, "new_password2": second or first}
    )


def signed_in(phone: str = PHONE, password: str = PASSWORD) -> Client:
    client = Client()
    client.post(reverse("accounts:login"), {"identifier": phone, "password": password})
    return client


def test_reset_by_sms_sets_the_password_and_signs_out_other_devices(phone_user: Any) -> None:
    # given the account is signed in on another device
    laptop = signed_in()
    assert laptop.get(reverse("accounts:account")).status_code == 200
    client = Client()

    # when the number asks for a code and enters it with a new password
    response = ask(client)
    assert response["Location"] == CODE_PAGE
    assert [m.to for m in delivered_texts()] == [PHONE]
    response = enter(client, texted_code())

    # then the password changed and the other device is signed out
    assert response["Location"] == reverse("accounts:password_reset_complete")
    phone_user.refresh_from_db()
    assert phone_user.check_password(NEW)
    assert laptop.get(reverse("accounts:account")).status_code == 302
    assert signed_in(password=NEW).get(reverse("accounts:account")).status_code == 200
    assert PhoneCode.objects.get().used_at is not None


@pytest.mark.parametrize("phone", ["+85294000000", "unverified"])
def test_unknown_or_unverified_number_looks_the_same_and_texts_nothing(
    phone_user: Any, phone: str
) -> None:
    # given a number with no account, or an account whose number is not proven
    if phone == "unverified":
        do_register_user(email="", phone="+85294000001", password=PASSWORD, language="en")
        phone = "+85294000001"
    client, real = Client(), Client()

    # when both ask for a code
    response = ask(client, phone)
    real_response = ask(real)

    # then both reach the same page; only the proven number gets a text
    assert response.status_code == real_response.status_code == 302
    assert response["Location"] == real_response["Location"] == CODE_PAGE
    assert [m.to for m in delivered_texts()] == [PHONE]
    page = client.get(CODE_PAGE)
    assert page.status_code == 200
    # and any code fails there like a wrong one
    response = enter(client, "123456")
    assert response.status_code == 400
    assert "This code is wrong or has expired." in response.content.decode()


@pytest.mark.parametrize("typed", ["", "not a number", "123"])
def test_a_bad_number_is_a_form_error(typed: str) -> None:
    response = ask(Client(), typed)
    assert response.status_code == 400
    assert response.context["form"].errors["phone"]
    assert PhoneCode.objects.count() == 0


def test_wrong_code_changes_nothing(phone_user: Any) -> None:
    client = Client()
    ask(client)
    response = enter(client, wrong(texted_code()))
    assert response.status_code == 400
    assert response.context["form"].errors["code"]
    phone_user.refresh_from_db()
    assert phone_user.check_password(PASSWORD)


def test_five_wrong_codes_lock_and_spend_the_code(phone_user: Any) -> None:
    # given
    client = Client()
    ask(client)
    code = texted_code()

    # when
    statuses = [enter(client, wrong(code)).status_code for _ in range(5)]
    last = enter(client, code)

    # then
    assert statuses == [400, 400, 400, 400, 429]
    assert last.status_code == 429
    assert "Too many failed attempts" in last.content.decode()
    phone_user.refresh_from_db()
    assert phone_user.check_password(PASSWORD)


def test_an_exhausted_code_needs_a_new_one(phone_user: Any) -> None:
    client = Client(REMOTE_ADDR="10.0.0.1")
    ask(client)
    code = texted_code()
    PhoneCode.objects.update(attempts=5)
    response = enter(client, code)
    assert response.status_code == 400
    assert "Too many wrong codes" in response.content.decode()


def test_an_expired_code_is_refused(phone_user: Any, settings: Any) -> None:
    client = Client()
    ask(client)
    code = texted_code()
    clock.advance(timedelta(minutes=settings.ACCOUNTS_CODE_MINUTES, seconds=1))
    response = enter(client, code)
    assert response.status_code == 400
    assert "This code has expired." in response.content.decode()
    phone_user.refresh_from_db()
    assert phone_user.check_password(PASSWORD)


def test_a_code_works_once(phone_user: Any) -> None:
    client = Client()
    ask(client)
    code = texted_code()
    row_id = PhoneCode.objects.get().pk
    assert enter(client, code).status_code == 302
    # the same code replayed from the same browser state
    session = client.session
    session["leb_sms_reset"] = row_id
    session.save()
    response = enter(client, code, "yet another passphrase 9")
    assert response.status_code == 400
    assert "already been used" in response.content.decode()
    phone_user.refresh_from_db()
    assert phone_user.check_password(NEW)


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [(NEW, NEW + "x", "new_password2"), ("12345678", "12345678", "new_password1")],
)
def test_a_bad_new_password_keeps_the_code(
    phone_user: Any, first: str, second: str, field: str
) -> None:
    # given a right code with a refused password
    client = Client()
    ask(client)
    code = texted_code()
    response = enter(client, code, first, second)

    # then the password errors show, the code stays good
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert PhoneCode.objects.get().used_at is None
    assert enter(client, code).status_code == 302


def test_the_code_page_needs_a_request_first() -> None:
    assert Client().get(CODE_PAGE)["Location"] == START
    assert Client().post(CODE_PAGE, {"code": "123456"})["Location"] == START


def test_sends_are_limited_per_number(phone_user: Any) -> None:
    # given five requests from different places
    for n in range(5):
        assert ask(Client(REMOTE_ADDR=f"10.0.1.{n}")).status_code == 302

    # when a sixth comes
    response = ask(Client(REMOTE_ADDR="10.0.1.99"))

    # then it is refused, with no text
    assert response.status_code == 429
    assert "too many codes or links" in response.content.decode()
    assert len(delivered_texts()) == 5


def test_sends_are_limited_per_address_whatever_the_number(phone_user: Any) -> None:
    client = Client(REMOTE_ADDR="10.0.2.1")
    for n in range(5):
        ask(client, f"+8529400000{n}")
    assert ask(client).status_code == 429
    assert delivered_texts() == []


def test_a_failing_gateway_gives_up_when_the_code_expires(phone_user: Any, settings: Any) -> None:
    # given a gateway that refuses every message
    settings.SMS_BACKEND = "leb.sms.backends.http.SmsBackend"
    settings.SMS_HTTP_URL = ""

    # when a code is asked for, and the outbox tries every minute or so
    response = ask(Client())
    assert response.status_code == 302 and response["Location"] == CODE_PAGE
    for _ in range(12):
        deliver_outbox()
        clock.advance(timedelta(minutes=1))
    deliver_outbox()

    # then the message failed for good, its code emptied, nothing was texted
    message = Notification.objects.get(kind="phone_code")
    assert message.status == Status.FAILED
    assert message.context["code"] == "" and message.context["purpose"] == "reset_password"
    assert message.attempts >= 2
    assert leb.sms.outbox == []
    assert PhoneCode.objects.count() == 1


def test_the_text_never_reaches_the_log(phone_user: Any, caplog: Any) -> None:
    ask(Client())
    assert texted_code() not in caplog.text


@pytest.mark.parametrize("typed", ["", "12 34", "abcdef"])
def test_a_malformed_code_is_a_form_error_and_no_attempt(phone_user: Any, typed: str) -> None:
    client = Client()
    ask(client)
    response = enter(client, typed)
    assert response.status_code == 400
    assert response.context["form"].errors["code"]
    assert PhoneCode.objects.get().attempts == 0
