from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.common import clock
from leb.lines.models import LineEvent, LineEventKind
from leb.mylines import binding
from leb.mylines.models import BindingChallenge
from leb.notifications.models import Notification, Status
from leb.security.models import Lockout
from leb.testing import deliver_outbox

pytestmark = pytest.mark.django_db
BIND = reverse("mylines:bind")
NOT_VERIFIED = "We could not verify this line"
TAKEN = "This line is linked to another account"


def by_code(line: Any, code: str | None = None, **extra: str) -> dict[str, str]:
    return {
        "iccid": line.iccid,
        "number": line.msisdn,
        "activation_code": code if code is not None else f"LPA:{line.activation_code}",
        "method": "activation_code",
        **extra,
    }


def by_sms(line: Any, **extra: str) -> dict[str, str]:
    return {"iccid": line.iccid, "number": line.msisdn, "method": "sms", **extra}


def owner_events(line: Any) -> int:
    return LineEvent.objects.filter(line=line, kind=LineEventKind.OWNER_CHANGED).count()


def sent_code(outbox: list[Any]) -> str:
    deliver_outbox()
    match = re.search(r"\b(\d{6})\b", outbox[-1].text)
    assert match
    return match.group(1)


# --- activation code ------------------------------------------------------------------


def test_bind_with_the_activation_code(
    owner_client: Client, owner: Any, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line()

    # when
    response = owner_client.post(BIND, by_code(line))

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("mylines:line", args=[line.pk])
    line.refresh_from_db()
    assert line.owner == owner
    event = LineEvent.objects.get(line=line, kind=LineEventKind.OWNER_CHANGED)
    assert event.actor == f"user:{owner.pk}"


@pytest.mark.parametrize(
    "variant",
    [
        lambda code: code,
        lambda code: "lpa:" + code.replace("smdp.example.com", "SMDP.Example.COM"),
        lambda code: f"  LPA:{code}  ",
    ],
)
def test_the_activation_code_prefix_and_host_case_do_not_matter(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], variant: Any
) -> None:
    # given
    line = make_line()

    # when
    response = owner_client.post(BIND, by_code(line, variant(line.activation_code)))

    # then
    assert response.status_code == 302
    line.refresh_from_db()
    assert line.owner == owner


def test_the_matching_id_is_case_sensitive(make_line: Callable[..., Any]) -> None:
    # given
    line = make_line()

    # when / then
    assert not binding.activation_code_matches(line, line.activation_code.lower())
    assert binding.activation_code_matches(line, line.activation_code)


def test_a_wrong_activation_code_binds_nothing(
    owner_client: Client, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line()

    # when
    response = owner_client.post(BIND, by_code(line, "LPA:1$smdp.example.com$WRONG"))

    # then
    assert response.status_code == 200
    assert NOT_VERIFIED in response.content.decode()
    line.refresh_from_db()
    assert line.owner is None
    assert owner_events(line) == 0


def test_an_unknown_pair_gets_the_same_message_as_a_wrong_code(
    owner_client: Client, make_line: Callable[..., Any]
) -> None:
    # given: a real ICCID with another line's number
    line, other = make_line(), make_line()

    # when
    wrong_code = owner_client.post(BIND, by_code(line, "1$smdp.example.com$WRONG"))
    unknown_pair = owner_client.post(BIND, {**by_code(line), "number": other.msisdn})

    # then
    def errors(response: Any) -> list[str]:
        return re.findall(r'class="error">([^<]+)<', response.content.decode())

    assert errors(wrong_code) == errors(unknown_pair)
    assert wrong_code.status_code == unknown_pair.status_code == 200


def test_the_activation_code_must_be_entered(
    owner_client: Client, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line()

    # when
    response = owner_client.post(BIND, by_code(line, ""))

    # then
    assert "Enter the activation code" in response.content.decode()
    assert not Lockout.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("iccid", "8985200000000000001", "check digit is wrong"),
        ("iccid", "12345", "An ICCID has 19 or 20 digits"),
        ("number", "1234", "is not a valid phone number"),
        ("number", "abc", "digits only"),
    ],
)
def test_bad_iccid_or_number_is_a_form_error_and_writes_nothing(
    owner_client: Client, make_line: Callable[..., Any], field: str, value: str, message: str
) -> None:
    # given
    line = make_line()

    # when
    response = owner_client.post(BIND, {**by_code(line), field: value})

    # then
    assert response.status_code == 200
    assert message in response.content.decode()
    line.refresh_from_db()
    assert line.owner is None
    assert not Lockout.objects.exists()
    assert not BindingChallenge.objects.exists()


def test_form_errors_are_translated(owner_client: Client, make_line: Callable[..., Any]) -> None:
    # given
    line = make_line()

    # when
    response = owner_client.post(
        BIND, {**by_code(line), "iccid": "12345"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )

    # then
    body = response.content.decode()
    assert "An ICCID has 19 or 20 digits" not in body
    assert "ICCID" in body


def test_lockout_after_five_failures(owner_client: Client, make_line: Callable[..., Any]) -> None:
    # given
    line = make_line()
    for _ in range(4):
        assert owner_client.post(BIND, by_code(line, "1$x$WRONG")).status_code == 200

    # when
    fifth = owner_client.post(BIND, by_code(line, "1$x$WRONG"))
    then_right = owner_client.post(BIND, by_code(line))

    # then
    assert fifth.status_code == 429
    assert "Too many failed attempts" in fifth.content.decode()
    assert then_right.status_code == 429
    assert "Too many failed attempts" in then_right.content.decode()
    line.refresh_from_db()
    assert line.owner is None


def test_lockout_escalates(owner_client: Client, make_line: Callable[..., Any]) -> None:
    # given: a first lock served out
    line = make_line()
    for _ in range(5):
        owner_client.post(BIND, by_code(line, "1$x$WRONG"))
    clock.advance(timedelta(minutes=16))

    # when: five more failures
    for _ in range(5):
        response = owner_client.post(BIND, by_code(line, "1$x$WRONG"))

    # then: the second lock is longer
    assert response.status_code == 429
    assert "30 minutes" in response.content.decode()


def test_a_locked_line_locks_other_accounts_too(
    owner_client: Client, outsider_client: Client, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line()
    for _ in range(5):
        outsider_client.post(BIND, by_code(line, "1$x$WRONG"), REMOTE_ADDR="10.0.0.9")

    # when
    response = owner_client.post(BIND, by_code(line), REMOTE_ADDR="10.0.0.1")

    # then
    assert response.status_code == 429


def test_a_line_bound_to_another_account_cannot_be_taken_over(
    owner_client: Client, outsider: Any, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line(owner=outsider)

    # when
    response = owner_client.post(BIND, by_code(line))

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert TAKEN in body
    assert outsider.email not in body
    line.refresh_from_db()
    assert line.owner == outsider
    assert owner_events(line) == 0


def test_binding_a_line_already_yours_changes_nothing(
    owner_client: Client, owner: Any, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line(owner=owner)

    # when
    response = owner_client.post(BIND, by_code(line))

    # then
    assert response.status_code == 302
    assert owner_events(line) == 0


# --- SMS code --------------------------------------------------------------------------


def test_bind_with_a_code_sent_by_sms(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], sms_outbox: list[Any]
) -> None:
    # given
    line = make_line()
    sent = owner_client.post(BIND, by_sms(line))
    assert sent.status_code == 302
    deliver_outbox()
    [message] = sms_outbox
    assert message.to == line.msisdn
    challenge = BindingChallenge.objects.get()
    code = sent_code(sms_outbox)
    assert code not in challenge.code_hash
    assert challenge.expires_at - challenge.created_at == timedelta(minutes=10)

    # when
    response = owner_client.post(sent["Location"], {"code": code})

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("mylines:line", args=[line.pk])
    line.refresh_from_db()
    assert line.owner == owner
    challenge.refresh_from_db()
    assert challenge.used_at is not None


def test_the_confirm_page_shows_where_the_code_went(
    owner_client: Client, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line()
    sent = owner_client.post(BIND, by_sms(line))

    # when
    response = owner_client.get(sent["Location"])

    # then
    assert response.status_code == 200
    assert "+852 94" in response.content.decode()


def test_a_wrong_sms_code_binds_nothing(
    owner_client: Client, make_line: Callable[..., Any], sms_outbox: list[Any]
) -> None:
    # given
    line = make_line()
    sent = owner_client.post(BIND, by_sms(line))
    wrong = f"{(int(sent_code(sms_outbox)) + 1) % 1_000_000:06d}"

    # when
    response = owner_client.post(sent["Location"], {"code": wrong})

    # then
    assert response.status_code == 200
    assert NOT_VERIFIED in response.content.decode()
    line.refresh_from_db()
    assert line.owner is None
    assert BindingChallenge.objects.get().attempts == 1


def test_an_expired_sms_code_is_refused(
    owner_client: Client, make_line: Callable[..., Any], sms_outbox: list[Any]
) -> None:
    # given
    line = make_line()
    sent = owner_client.post(BIND, by_sms(line))
    code = sent_code(sms_outbox)
    clock.advance(timedelta(minutes=10, seconds=1))

    # when
    response = owner_client.post(sent["Location"], {"code": code})

    # then
    assert "This code has expired" in response.content.decode()
    line.refresh_from_db()
    assert line.owner is None


def test_a_used_sms_code_cannot_be_used_again(
    owner_client: Client, owner: Any, make_line: Callable[..., Any], sms_outbox: list[Any]
) -> None:
    # given: bound with the code, then unbound
    line = make_line()
    sent = owner_client.post(BIND, by_sms(line))
    code = sent_code(sms_outbox)
    owner_client.post(sent["Location"], {"code": code})
    owner_client.post(reverse("mylines:unbind", args=[line.pk]))

    # when
    response = owner_client.post(sent["Location"], {"code": code})

    # then
    assert "This code has already been used" in response.content.decode()
    line.refresh_from_db()
    assert line.owner is None


def test_an_unknown_pair_sends_no_sms_but_looks_the_same(
    owner_client: Client, make_line: Callable[..., Any], sms_outbox: list[Any]
) -> None:
    # given
    line, other = make_line(), make_line()

    # when
    sent = owner_client.post(BIND, {**by_sms(line), "number": other.msisdn})
    response = owner_client.post(sent["Location"], {"code": "123456"})

    # then
    assert sent.status_code == 302
    deliver_outbox()
    assert sms_outbox == []
    assert NOT_VERIFIED in response.content.decode()


def test_lockout_after_five_wrong_sms_codes(
    owner_client: Client, make_line: Callable[..., Any], sms_outbox: list[Any]
) -> None:
    # given
    line = make_line()
    sent = owner_client.post(BIND, by_sms(line))
    right = sent_code(sms_outbox)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(4):
        owner_client.post(sent["Location"], {"code": wrong})

    # when
    fifth = owner_client.post(sent["Location"], {"code": wrong})
    then_right = owner_client.post(sent["Location"], {"code": right})

    # then
    assert fifth.status_code == 429
    assert "Too many failed attempts" in fifth.content.decode()
    assert then_right.status_code == 429
    line.refresh_from_db()
    assert line.owner is None


def test_sms_code_for_a_line_of_another_account_does_not_take_it_over(
    owner_client: Client, outsider: Any, make_line: Callable[..., Any], sms_outbox: list[Any]
) -> None:
    # given
    line = make_line(owner=outsider)
    sent = owner_client.post(BIND, by_sms(line))

    # when
    response = owner_client.post(sent["Location"], {"code": sent_code(sms_outbox)})

    # then
    assert TAKEN in response.content.decode()
    line.refresh_from_db()
    assert line.owner == outsider
    assert owner_events(line) == 0
    assert BindingChallenge.objects.get().used_at is None


def test_too_many_sms_codes_in_an_hour(
    owner_client: Client, make_line: Callable[..., Any], sms_outbox: list[Any], settings: Any
) -> None:
    # given
    settings.MYLINES_BIND_SMS_PER_HOUR = 2
    line = make_line()
    owner_client.post(BIND, by_sms(line))
    owner_client.post(BIND, by_sms(line))

    # when
    response = owner_client.post(BIND, by_sms(line))

    # then
    assert response.status_code == 429
    deliver_outbox()
    assert len(sms_outbox) == 2


def test_a_failing_sms_gateway_is_retried_and_never_texts_an_expired_code(
    owner_client: Client, make_line: Callable[..., Any], settings: Any, sms_outbox: list[Any]
) -> None:
    # given a gateway that refuses every message
    settings.SMS_BACKEND = "leb.sms.backends.http.SmsBackend"
    settings.SMS_HTTP_URL = ""
    line = make_line()

    # when a code is asked for
    response = owner_client.post(BIND, by_sms(line))

    # then the confirm page follows and the outbox retries the text
    challenge = BindingChallenge.objects.get()
    assert response["Location"] == reverse("mylines:bind_confirm", args=[challenge.pk])
    assert deliver_outbox().retried == 1
    message = Notification.objects.get(kind="line_binding_code")
    assert message.deliver_by == challenge.expires_at

    # and once the code has expired the gateway is back, but the code is not sent
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    clock.advance(binding.code_ttl() + timedelta(seconds=1))
    deliver_outbox()
    message.refresh_from_db()
    assert message.status in (Status.SKIPPED, Status.FAILED)
    assert message.context["code"] == ""
    assert sms_outbox == []


def test_the_code_is_stored_as_an_hmac(
    owner: Any, make_line: Callable[..., Any], now: datetime
) -> None:
    # given / when
    challenge, code = binding.create_challenge(owner, make_line(), "x", "+85294000001", now)

    # then
    assert len(challenge.code_hash) == 64
    assert code not in challenge.code_hash
    assert binding.code_matches(challenge, code)


# --- unbind ----------------------------------------------------------------------------


def test_owner_unbinds_a_line(
    owner_client: Client, owner: Any, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line(owner=owner)

    # when
    response = owner_client.post(reverse("mylines:unbind", args=[line.pk]))

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("mylines:list")
    line.refresh_from_db()
    assert line.owner is None
    assert owner_events(line) == 1


def test_unbind_needs_post(owner_client: Client, owner: Any, make_line: Callable[..., Any]) -> None:
    # given
    line = make_line(owner=owner)

    # when
    response = owner_client.get(reverse("mylines:unbind", args=[line.pk]))

    # then
    assert response.status_code == 405
    line.refresh_from_db()
    assert line.owner == owner


def test_outsider_cannot_unbind(
    outsider_client: Client, owner: Any, make_line: Callable[..., Any]
) -> None:
    # given
    line = make_line(owner=owner)

    # when
    response = outsider_client.post(reverse("mylines:unbind", args=[line.pk]))

    # then
    assert response.status_code == 404
    line.refresh_from_db()
    assert line.owner == owner


def test_outsider_cannot_see_or_use_someone_elses_challenge(
    owner_client: Client,
    outsider_client: Client,
    make_line: Callable[..., Any],
    sms_outbox: list[Any],
) -> None:
    # given
    line = make_line()
    sent = owner_client.post(BIND, by_sms(line))

    # when
    seen = outsider_client.get(sent["Location"])
    used = outsider_client.post(sent["Location"], {"code": sent_code(sms_outbox)})

    # then
    assert seen.status_code == used.status_code == 404
    line.refresh_from_db()
    assert line.owner is None


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_sent_to_sign_in_for_bind(client: Client, method: str) -> None:
    # when
    response = getattr(client, method)(BIND)

    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
