from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from leb.accounts.actions import do_register_user
from leb.testing import delivered_mail

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery 42"


@pytest.fixture
def owner() -> Any:
    return do_register_user(
        email="owner@example.com", phone="", password=PASSWORD, language="en", verified=True
    )


@pytest.fixture
def phone_user() -> Any:
    return do_register_user(email="", phone="+85294123456", password=PASSWORD, language="zh-hant")


def sign_in(client: Client, identifier: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(
        reverse("accounts:login"), {"identifier": identifier, "password": password}, **extra
    )


@pytest.mark.argon2
def test_register_with_email_signs_in(client: Client) -> None:
    # given / when
    response = client.post(
        reverse("accounts:register"),
        {"identifier": "New@Example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    # then
    assert response.status_code == 302
    user = get_user_model().objects.get(email="new@example.com")
    assert user.check_password(PASSWORD)
    assert user.password.startswith("argon2")
    assert client.get(reverse("accounts:account")).status_code == 200


def test_register_with_a_national_mobile_number(client: Client) -> None:
    client.post(
        reverse("accounts:register"),
        {"identifier": "9412 3457", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert get_user_model().objects.get(profile__phone="+85294123457")


@pytest.mark.parametrize(
    ("identifier", "password1", "password2", "field"),
    [
        ("owner@example.com", PASSWORD, PASSWORD, "identifier"),
        ("not-an-address", PASSWORD, PASSWORD, "identifier"),
        ("new@example.com", PASSWORD, PASSWORD + "x", "password2"),
        ("new@example.com", "12345678", "12345678", "password1"),
    ],
)
def test_register_refuses_bad_input_and_writes_nothing(
    client: Client, owner: Any, identifier: str, password1: str, password2: str, field: str
) -> None:
    before = get_user_model().objects.count()
    response = client.post(
        reverse("accounts:register"),
        {"identifier": identifier, "password1": password1, "password2": password2},
    )
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert get_user_model().objects.count() == before


def test_sign_in_with_email_or_mobile(client: Client, owner: Any, phone_user: Any) -> None:
    assert sign_in(client, "OWNER@example.com").status_code == 302
    other = Client()
    assert sign_in(other, "+852 9412 3456").status_code == 302
    assert other.get(reverse("accounts:account")).context["user"] == phone_user


def test_wrong_password_and_unknown_account_get_the_same_message(
    client: Client, owner: Any
) -> None:
    wrong = sign_in(client, "owner@example.com", "nope")
    unknown = sign_in(client, "ghost@example.com", "nope")
    assert wrong.status_code == unknown.status_code == 200
    assert wrong.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()


def test_five_failures_lock_the_account_even_for_the_right_password(
    client: Client, owner: Any
) -> None:
    for _ in range(4):
        assert sign_in(client, "owner@example.com", "nope").status_code == 200
    assert sign_in(client, "owner@example.com", "nope").status_code == 429
    locked = sign_in(Client(REMOTE_ADDR="10.0.0.9"), "owner@example.com")
    assert locked.status_code == 429
    assert "15" in locked.content.decode()


def test_next_must_stay_on_site(client: Client, owner: Any) -> None:
    response = client.post(
        reverse("accounts:login") + "?next=https://evil.example/",
        {"identifier": "owner@example.com", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("accounts:account")


def test_two_step_sign_in(client: Client, owner: Any, settings: Any) -> None:
    # django-otp's own per-device delay after a wrong code would make the test wait
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    # given the owner turns on an authenticator app
    sign_in(client, "owner@example.com")
    client.get(reverse("accounts:totp_setup"))
    device = TOTPDevice.objects.get(user=owner)
    assert client.post(reverse("accounts:totp_setup"), {"code": "000000"}).status_code == 200
    code = f"{totp(device.bin_key):06d}"
    assert client.post(reverse("accounts:totp_setup"), {"code": code}).status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    # when signing in again, the password alone is not enough
    fresh = Client()
    response = sign_in(fresh, "owner@example.com")
    assert response["Location"].startswith(reverse("accounts:verify"))
    assert fresh.get(reverse("accounts:account")).status_code == 302
    # then a wrong code is refused and the right one signs in
    assert fresh.post(reverse("accounts:verify"), {"code": "123456"}).status_code == 200
    # a code is good once: act as if the next 30-second step had begun
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    device.refresh_from_db()
    assert (
        fresh.post(reverse("accounts:verify"), {"code": f"{totp(device.bin_key):06d}"}).status_code
        == 302
    )
    assert fresh.get(reverse("accounts:account")).status_code == 200


def test_sign_out_everywhere_ends_other_sessions(owner: Any) -> None:
    phone, laptop = Client(), Client()
    sign_in(phone, "owner@example.com")
    sign_in(laptop, "owner@example.com")
    assert laptop.get(reverse("accounts:account")).status_code == 200
    phone.post(reverse("accounts:logout_everywhere"))
    assert laptop.get(reverse("accounts:account")).status_code == 302
    assert phone.get(reverse("accounts:account")).status_code == 302


def test_password_reset_by_email(client: Client, owner: Any, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.post(reverse("accounts:password_reset"), {"email": "owner@example.com"})
    # an unknown address gets the same page and no email
    client.post(reverse("accounts:password_reset"), {"email": "ghost@example.com"})
    assert len(delivered_mail()) == 1
    link = re.search(r"https?://[^/]+(/\S+)", str(delivered_mail()[0].body))
    assert link is not None
    form_page = client.get(link.group(1), follow=True)
    new = "a brand new passphrase 7"
    client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    owner.refresh_from_db()
    assert owner.check_password(new)
    # and every session of the account ends
    assert owner.profile.session_epoch == 1


def test_account_pages_need_sign_in(client: Client) -> None:
    for name in ["accounts:account", "accounts:totp_setup"]:
        response = client.get(reverse(name))
        assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
    assert client.get(reverse("accounts:logout_everywhere")).status_code in (302, 405)


def test_preferences_set_language_and_time_zone(client: Client, owner: Any) -> None:
    # given a signed-in owner
    sign_in(client, "owner@example.com")
    # when they choose Traditional Chinese and London time
    response = client.post(
        reverse("accounts:preferences"), {"language": "zh-hant", "time_zone": "Europe/London"}
    )
    # then both are kept and used
    assert response.status_code == 302
    owner.profile.refresh_from_db()
    assert (owner.profile.language, owner.profile.time_zone) == ("zh-hant", "Europe/London")
    assert client.session["tz"] == "Europe/London"
    assert client.cookies["django_language"].value == "zh-hant"
    # and the next sign-in brings the time zone back
    fresh = Client()
    sign_in(fresh, "owner@example.com")
    assert fresh.session["tz"] == "Europe/London"


def test_preferences_refuse_an_unknown_zone(client: Client, owner: Any) -> None:
    sign_in(client, "owner@example.com")
    response = client.post(
        reverse("accounts:preferences"), {"language": "en", "time_zone": "Mars/Base"}
    )
    assert response.status_code == 400
    owner.profile.refresh_from_db()
    assert owner.profile.time_zone == ""
