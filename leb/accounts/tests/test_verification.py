from __future__ import annotations

import importlib
import re
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps as global_apps
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from leb.accounts import queries
from leb.accounts.actions import do_mark_contacts_verified, do_register_user
from leb.accounts.models import PhoneCode, Profile
from leb.common import clock
from leb.notifications.actions import verified_contact_annotations
from leb.notifications.models import Notification, Status
from leb.testing import deliver_outbox, delivered_mail, delivered_texts

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery 42"
PHONE = "+85294123456"


def register(client: Client, identifier: str) -> Any:
    return client.post(
        reverse("accounts:register"),
        {"identifier": identifier, "password1": PASSWORD, "password2": PASSWORD},
    )


def email_link() -> str:
    match = re.search(r"https://leb\.example(/\S+)", str(delivered_mail()[-1].body))
    assert match is not None
    return match.group(1)


def texted_code() -> str:
    match = re.search(r"\b(\d{6})\b", delivered_texts()[-1].text)
    assert match is not None
    return match.group(1)


def profile_of(identifier: str) -> Profile:
    return Profile.objects.get(user__username=identifier)


# --- Email ---------------------------------------------------------------------------


def test_sign_up_with_email_sends_a_link_that_verifies_the_address(client: Client) -> None:
    # given a new sign-up
    response = register(client, "new@example.com")
    assert response.status_code == 302
    assert len(delivered_mail()) == 1 and delivered_mail()[0].to == ["new@example.com"]
    assert profile_of("new@example.com").email_verified_at is None
    page = client.get(reverse("accounts:account")).content.decode()
    assert 'data-testid="contact-email" data-verified="no"' in page
    assert reverse("accounts:send_email_link") in page

    # when the link is opened, even on another device without signing in
    response = Client().get(email_link())

    # then the address is verified
    assert response.status_code == 200
    assert 'data-result="verified"' in response.content.decode()
    assert profile_of("new@example.com").email_verified_at == clock.now()
    page = client.get(reverse("accounts:account")).content.decode()
    assert 'data-testid="contact-email" data-verified="yes"' in page


def test_the_link_works_once(client: Client) -> None:
    # given a used link
    register(client, "new@example.com")
    link = email_link()
    client.get(link)
    first = profile_of("new@example.com").email_verified_at

    # when it is opened again later
    clock.advance(timedelta(hours=1))
    response = client.get(link)

    # then it changes nothing
    assert 'data-result="already"' in response.content.decode()
    assert profile_of("new@example.com").email_verified_at == first


def test_an_expired_link_verifies_nothing(client: Client, settings: Any) -> None:
    # given a link older than its lifetime
    settings.ACCOUNTS_EMAIL_LINK_HOURS = 2
    register(client, "new@example.com")
    link = email_link()

    # when it is opened three hours later
    clock.advance(timedelta(hours=3))
    response = client.get(link)

    # then
    assert response.status_code == 400
    assert 'data-result="invalid"' in response.content.decode()
    assert profile_of("new@example.com").email_verified_at is None


@pytest.mark.parametrize("mangle", [lambda t: t[:-2] + "xx", lambda t: "nonsense", lambda t: ""])
def test_a_tampered_link_verifies_nothing(client: Client, mangle: Any) -> None:
    # given
    register(client, "new@example.com")
    token = email_link().rstrip("/").rsplit("/", 1)[-1]

    # when
    response = client.get(f"/account/verify/email/{mangle(token) or 'x'}/")

    # then
    assert response.status_code == 400
    assert profile_of("new@example.com").email_verified_at is None


def test_a_link_for_a_changed_address_no_longer_works(client: Client) -> None:
    # given a link, then the account's address changes
    register(client, "new@example.com")
    link = email_link()
    get_user_model().objects.filter(username="new@example.com").update(email="other@example.com")

    # when / then
    assert client.get(link).status_code == 400
    assert profile_of("new@example.com").email_verified_at is None


def test_resend_the_link_and_its_limit(client: Client) -> None:
    # given a signed-in, unverified account (sign-up sent one link)
    register(client, "new@example.com")

    # when asking again four times, then a fifth
    for _ in range(4):
        assert client.post(reverse("accounts:send_email_link")).status_code == 302
    assert len(delivered_mail()) == 5
    response = client.post(reverse("accounts:send_email_link"), follow=True)

    # then the sixth is refused with a clear message and no email
    assert len(delivered_mail()) == 5
    assert "too many codes or links" in response.content.decode()


def test_resend_needs_sign_in_and_post(client: Client) -> None:
    assert client.get(reverse("accounts:send_email_link")).status_code in (302, 405)
    response = client.post(reverse("accounts:send_email_link"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
    assert delivered_mail() == []


def test_resend_for_a_verified_address_sends_nothing(client: Client) -> None:
    user = do_register_user(
        email="v@example.com", phone="", password=PASSWORD, language="en", verified=True
    )
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    response = client.post(reverse("accounts:send_email_link"), follow=True)
    assert delivered_mail() == []
    assert "already verified" in response.content.decode()


def test_password_reset_to_an_unverified_address_sends_nothing(client: Client) -> None:
    # given an account whose address is not proven, and one whose is
    do_register_user(email="unproven@example.com", phone="", password=PASSWORD, language="en")
    do_register_user(
        email="proven@example.com", phone="", password=PASSWORD, language="en", verified=True
    )

    # when each asks for a reset, and so does an unknown address
    pages = [
        client.post(reverse("accounts:password_reset"), {"email": address})
        for address in ("unproven@example.com", "ghost@example.com", "proven@example.com")
    ]

    # then only the proven address gets a link, and every page is the same
    assert [m.to for m in delivered_mail()] == [["proven@example.com"]]
    assert {p.status_code for p in pages} == {302}
    assert {p["Location"] for p in pages} == {reverse("accounts:password_reset_done")}


# --- Mobile number -------------------------------------------------------------------


def test_sign_up_with_a_mobile_number_texts_a_code_that_verifies_it(client: Client) -> None:
    # given a sign-up with a mobile number
    response = register(client, PHONE)
    assert response["Location"] == reverse("accounts:verify_phone")
    assert [m.to for m in delivered_texts()] == [PHONE]
    code = texted_code()
    row = PhoneCode.objects.get()
    assert code not in row.code_hash and len(row.code_hash) == 64
    page = client.get(reverse("accounts:account")).content.decode()
    assert 'data-testid="contact-phone" data-verified="no"' in page

    # when the code is entered
    response = client.post(reverse("accounts:verify_phone"), {"code": code})

    # then the number is verified and the code is spent
    assert response.status_code == 302
    assert profile_of(PHONE).phone_verified_at == clock.now()
    row.refresh_from_db()
    assert row.used_at is not None
    page = client.get(reverse("accounts:account")).content.decode()
    assert 'data-testid="contact-phone" data-verified="yes"' in page


def test_a_wrong_code_is_refused(client: Client) -> None:
    register(client, PHONE)
    code = texted_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = client.post(reverse("accounts:verify_phone"), {"code": wrong})
    assert response.status_code == 400
    assert "This code is wrong or has expired." in response.content.decode()
    assert profile_of(PHONE).phone_verified_at is None
    assert PhoneCode.objects.get().attempts == 1


@pytest.mark.parametrize("typed", ["", "12345", "abcdef", "1234567"])
def test_a_malformed_code_is_a_form_error(client: Client, typed: str) -> None:
    register(client, PHONE)
    response = client.post(reverse("accounts:verify_phone"), {"code": typed})
    assert response.status_code == 400
    assert response.context["form"].errors["code"]
    assert PhoneCode.objects.get().attempts == 0


def test_an_expired_code_is_refused(client: Client, settings: Any) -> None:
    register(client, PHONE)
    code = texted_code()
    clock.advance(timedelta(minutes=settings.ACCOUNTS_CODE_MINUTES, seconds=1))
    response = client.post(reverse("accounts:verify_phone"), {"code": code})
    assert response.status_code == 400
    assert "This code has expired." in response.content.decode()
    assert profile_of(PHONE).phone_verified_at is None


def test_five_wrong_codes_spend_the_code_and_lock(client: Client) -> None:
    # given five wrong entries
    register(client, PHONE)
    code = texted_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    statuses = [
        client.post(reverse("accounts:verify_phone"), {"code": wrong}).status_code for _ in range(5)
    ]

    # when the right code comes next
    response = client.post(reverse("accounts:verify_phone"), {"code": code})

    # then the fifth wrong entry locked, and the right code no longer works
    assert statuses == [400, 400, 400, 400, 429]
    assert response.status_code == 429
    assert profile_of(PHONE).phone_verified_at is None


def test_a_used_code_cannot_be_used_again(client: Client) -> None:
    register(client, PHONE)
    code = texted_code()
    client.post(reverse("accounts:verify_phone"), {"code": code})
    Profile.objects.filter(phone=PHONE).update(phone_verified_at=None)
    response = client.post(reverse("accounts:verify_phone"), {"code": code})
    assert response.status_code == 400
    assert "already been used" in response.content.decode()


def test_a_new_code_and_the_send_limit(client: Client) -> None:
    # given the code sent at sign-up
    register(client, PHONE)

    # when four more are asked for, then a sixth
    for _ in range(4):
        client.post(reverse("accounts:verify_phone"), {"send": "1"})
    response = client.post(reverse("accounts:verify_phone"), {"send": "1"}, follow=True)

    # then five went out and the sixth is refused
    assert len(delivered_texts()) == 5
    assert PhoneCode.objects.count() == 5
    assert "too many codes or links" in response.content.decode()
    # and only the newest code counts
    newest = texted_code()
    assert client.post(reverse("accounts:verify_phone"), {"code": newest}).status_code == 302


def test_no_code_asked_for_yet(client: Client) -> None:
    user = do_register_user(email="", phone=PHONE, password=PASSWORD, language="en")
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    response = client.post(reverse("accounts:verify_phone"), {"code": "123456"})
    assert response.status_code == 400
    assert "Ask for a code first." in response.content.decode()


def test_a_failing_gateway_is_retried_until_the_code_expires(client: Client, settings: Any) -> None:
    # given a gateway that refuses every message
    settings.SMS_BACKEND = "leb.sms.backends.http.SmsBackend"
    settings.SMS_HTTP_URL = ""
    user = do_register_user(email="", phone=PHONE, password=PASSWORD, language="en")
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")

    # when a code is asked for
    response = client.post(reverse("accounts:verify_phone"), {"send": "1"}, follow=True)

    # then the page says it is on its way, and the outbox keeps trying
    assert "We have texted a 6-digit code" in response.content.decode()
    code = PhoneCode.objects.get()
    assert deliver_outbox().retried == 1
    message = Notification.objects.get(kind="phone_code")
    assert message.status == Status.PENDING and message.deliver_by == code.expires_at

    # and when the gateway is back before the code expires, it arrives
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    clock.advance(timedelta(minutes=1))
    assert [m.to for m in delivered_texts()] == [PHONE]
    message.refresh_from_db()
    assert message.status == Status.SENT and message.context["code"] == ""


def test_verify_phone_page_without_a_number_goes_to_the_account(client: Client) -> None:
    user = do_register_user(email="e@example.com", phone="", password=PASSWORD, language="en")
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    assert client.get(reverse("accounts:verify_phone"))["Location"] == reverse("accounts:account")


# --- What other apps read --------------------------------------------------------------


def test_queries_give_only_proven_contacts() -> None:
    # given
    unproven = do_register_user(email="u@example.com", phone="", password=PASSWORD, language="en")
    proven = do_register_user(
        email="p@example.com", phone="", password=PASSWORD, language="en", verified=True
    )
    phone_only = do_register_user(email="", phone=PHONE, password=PASSWORD, language="en")
    bare = get_user_model().objects.create_user("staff", "staff@example.com", PASSWORD)

    # then
    assert queries.verified_email(unproven) == ""
    assert queries.verified_email(proven) == "p@example.com"
    assert queries.verified_phone(phone_only) == ""
    assert queries.verified_email(bare) == ""
    do_mark_contacts_verified(phone_only)
    phone_only.refresh_from_db()
    assert queries.verified_phone(phone_only) == PHONE
    # the annotations are dynamic columns, unknown to the type checker
    annotated: Any = get_user_model().objects.annotate(**verified_contact_annotations())
    rows = dict(annotated.values_list("pk", "verified_email"))
    assert rows == {unproven.pk: "", proven.pk: "p@example.com", phone_only.pk: "", bare.pk: ""}
    phones = dict(annotated.values_list("pk", "verified_phone"))
    assert phones[phone_only.pk] == PHONE and phones[proven.pk] == ""


def test_existing_accounts_are_marked_verified_by_the_migration() -> None:
    # given accounts made before verification existed
    old = do_register_user(email="old@example.com", phone="", password=PASSWORD, language="en")
    old_phone = do_register_user(email="", phone=PHONE, password=PASSWORD, language="en")
    bare = get_user_model().objects.create_user("staff", "staff@example.com", PASSWORD)
    no_email = get_user_model().objects.create_user("clerk", "", PASSWORD)
    migration = importlib.import_module("leb.accounts.migrations.0003_verify_existing_contacts")

    # when
    migration.verify_existing(global_apps, None)

    # then
    for user in (old, old_phone, bare, no_email):
        user.refresh_from_db()
    assert queries.verified_email(old) == "old@example.com"
    assert queries.verified_phone(old_phone) == PHONE
    assert queries.verified_email(bare) == "staff@example.com"
    assert no_email.profile.email_verified_at is None


def test_register_verified_marks_both_contacts() -> None:
    user = do_register_user(email="", phone=PHONE, password=PASSWORD, language="en", verified=True)
    assert queries.verified_phone(user) == PHONE
