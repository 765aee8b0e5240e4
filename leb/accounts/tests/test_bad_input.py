# ruff: noqa: RUF001
"""The shared bad-input corpus (leb/common/tests/bad_input.py) through sign-up,
sign-in and both password resets, and the account in the back office: a
clear, translated form error (never a 500), no account, outbox or code row
written, failures counted against the account whatever the spelling, and
what an account holds shown escaped. A number typed in Arabic-Indic digits is
read as that number (E.164, ASCII), as phonenumbers reads it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from leb.accounts.actions import do_register_user
from leb.accounts.models import PhoneCode, Profile
from leb.common.tests.bad_input import IMG, SCRIPT, cases, unescaped
from leb.notifications.models import Notification
from leb.security.models import Lockout

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

IDENTIFIERS = cases("text", "msisdns", "numbers")
PASSWORD = "correct horse battery 42"


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def counts() -> tuple[int, int, int, int]:
    return (
        get_user_model().objects.count(),
        Profile.objects.count(),
        Notification.objects.count(),
        PhoneCode.objects.count(),
    )


def page_of(response: Any, case: str = "") -> str:
    assert response.status_code < 500, (case, response.status_code)
    text = response.content.decode()
    assert not unescaped(text), (case, unescaped(text))
    return text


def test_sign_up_refuses_every_bad_identifier(client: Client) -> None:
    for case, value in IDENTIFIERS:
        before = counts()
        data = {"identifier": value, "password1": PASSWORD, "password2": PASSWORD}
        response = Client().post(reverse("accounts:register"), data)
        page_of(response, case)
        if response.status_code == 302:
            # read as a number: stored as E.164 in ASCII digits, never as typed
            phone = Profile.objects.latest("pk").phone
            assert phone and phone.isascii() and phone.startswith("+"), case
            assert case == "msisdn-arabic-indic", case
            get_user_model().objects.filter(profile__phone=phone).delete()
            Notification.objects.all().delete()
            PhoneCode.objects.all().delete()
            continue
        assert response.status_code == 200, case
        assert response.context["form"].errors, case
        assert counts() == before, case


def test_a_password_is_refused_or_kept_exactly(client: Client) -> None:
    for number, (case, value) in enumerate(cases("text", "numbers")):
        before = counts()
        email = f"new-{number}@example.com"
        data = {"identifier": email, "password1": value, "password2": value}
        response = Client().post(reverse("accounts:register"), data)
        page_of(response, case)
        if response.status_code == 302:
            # a password is never shown; it is checked exactly as typed
            assert get_user_model().objects.get(email=email).check_password(value), case
            continue
        assert response.context["form"].errors, case
        assert counts() == before, case


def test_sign_in_refuses_every_bad_identifier_and_counts_it_once(client: Client) -> None:
    do_register_user(email="", phone="+85294123456", password=PASSWORD, language="en")
    before = counts()
    for case, value in IDENTIFIERS:
        response = Client(REMOTE_ADDR=f"10.1.{len(case)}.{len(value) % 250}").post(
            reverse("accounts:login"), {"identifier": value, "password": "wrong password"}
        )
        assert response.status_code in (200, 429), (case, response.status_code)
        page_of(response, case)
    assert counts() == before
    # every failure counted under one key per account or identifier, never a 10 000-character one
    assert all(len(row.key_hash) == 64 for row in Lockout.objects.all())


def test_five_failures_in_five_spellings_of_a_number_lock_the_account() -> None:
    # given an account signed in to with a mobile number
    do_register_user(email="", phone="+85294123456", password=PASSWORD, language="en")
    spellings = ["+85294123456", "+852 9412 3456", "0085294123456", "9412 3456", "9412-3456"]
    # when five wrong passwords come, each spelled differently, from five addresses
    answers = [
        Client(REMOTE_ADDR=f"10.2.0.{i}").post(
            reverse("accounts:login"), {"identifier": number, "password": "wrong password"}
        )
        for i, number in enumerate(spellings)
    ]
    # then the fifth locks the account, and the right password waits too
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    locked = Client(REMOTE_ADDR="10.2.0.99").post(
        reverse("accounts:login"), {"identifier": "+852-9412-3456", "password": PASSWORD}
    )
    assert locked.status_code == 429


def test_password_resets_refuse_every_bad_address_or_number(client: Client) -> None:
    before = counts()
    for case, value in IDENTIFIERS:
        email = Client().post(reverse("accounts:password_reset"), {"email": value})
        assert email.status_code in (200, 302), case
        page_of(email, case)
        sms = Client().post(reverse("accounts:password_reset_sms"), {"phone": value})
        page_of(sms, case)
        if sms.status_code == 302:
            # read as a number (see above): a code row, as for any number
            assert PhoneCode.objects.latest("pk").phone.isascii(), case
            PhoneCode.objects.all().delete()
            continue
        assert sms.status_code == 400, case
    assert counts() == before


def test_account_errors_are_translated(client: Client) -> None:
    data = {"identifier": "+852ABCDEFGH", "password1": PASSWORD, "password2": PASSWORD}
    sign_up = client.post(reverse("accounts:register"), data, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "请输入电子邮箱地址或手机号码。" in page_of(sign_up)
    sign_in = client.post(
        reverse("accounts:login"),
        {"identifier": SCRIPT, "password": "wrong password"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "电子邮箱/手机号码或密码错误。" in page_of(sign_in)
    reset = client.post(
        reverse("accounts:password_reset_sms"), {"phone": "0x10"}, HTTP_ACCEPT_LANGUAGE="zh-hant"
    )
    assert "請輸入手機號碼，例如 +852 9123 4567。" in page_of(reset)


def test_an_accounts_text_is_escaped_in_the_back_office() -> None:
    # given an account whose names hold markup (set in the back office, kept as typed)
    user = do_register_user(
        email="named@example.com", phone="", password=PASSWORD, language="en", verified=True
    )
    user.first_name, user.last_name = SCRIPT, IMG
    user.save(update_fields=["first_name", "last_name"])
    staff = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client()
    client.force_login(staff)
    # then the list and the change page show them as text
    for url in ("/ops/auth/user/", f"/ops/auth/user/{user.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        page_of(response, url)
    change = client.get(f"/ops/auth/user/{user.pk}/change/").content.decode()
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in change
    assert get_user_model().objects.get(pk=user.pk).first_name == SCRIPT
