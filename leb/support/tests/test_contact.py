from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from leb.audit.models import AuditEntry
from leb.support.actions import do_open_ticket
from leb.support.models import Ticket, TicketCategory, TicketMessage, TicketStatus
from leb.testing import deliver_outbox

URL = "/support/"


def _post(client: Client, **data: Any) -> Any:
    values = {"subject": "No signal", "category": "validity", "message": "My line has no signal."}
    values.update(data)
    return client.post(URL, values)


def _nothing_written() -> None:
    assert Ticket.objects.count() == 0
    assert TicketMessage.objects.count() == 0
    assert not AuditEntry.objects.filter(action="ticket.open").exists()


def test_the_contact_page_offers_the_signed_in_users_lines(
    owner_client: Client, owner_line: Any, make_line: Any
) -> None:
    # given
    someone_elses = make_line()
    # when
    response = owner_client.get(URL)
    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert f'value="{owner_line.pk}"' in page
    assert f'value="{someone_elses.pk}"' not in page
    assert 'name="contact_email"' not in page


def test_a_signed_in_user_opens_a_ticket_about_their_line(
    owner_client: Client, owner: Any, owner_line: Any
) -> None:
    # given a user with a line
    # when
    response = _post(owner_client, line=owner_line.pk)
    # then
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("support:ticket", args=[ticket.public_id])
    assert ticket.user == owner
    assert ticket.line == owner_line
    assert ticket.category == TicketCategory.VALIDITY
    assert ticket.status == TicketStatus.OPEN
    assert ticket.language == "en"
    assert [m.body for m in ticket.messages.all()] == ["My line has no signal."]
    entry = AuditEntry.objects.get(action="ticket.open")
    assert entry.actor == f"user:{owner.pk}"
    assert entry.target == f"ticket:{ticket.pk}"
    thread = owner_client.get(response["Location"])
    assert "My line has no signal." in thread.content.decode()
    assert "Your message was sent." in thread.content.decode()


def test_a_guest_opens_a_ticket_with_an_email_and_gets_a_private_link(
    client: Client,
    db: Any,
    frozen_now: None,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given a visitor without an account
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, contact_email="Guest@Example.com", contact_phone="")
    deliver_outbox()
    # then
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"].startswith("/support/t/")
    assert ticket.user is None
    assert ticket.contact_email == "guest@example.com"
    assert AuditEntry.objects.get(action="ticket.open").actor == "guest"
    page = client.get(response["Location"]).content.decode()
    assert "My line has no signal." in page
    assert "private link" in page
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["guest@example.com"]
    assert "https://leb.example" + response["Location"] in mailoutbox[0].body


def test_a_guest_may_leave_a_mobile_number_instead(client: Client, db: Any) -> None:
    # given
    # when
    response = _post(client, contact_phone="9400 0001")
    # then
    assert response.status_code == 302
    assert Ticket.objects.get().contact_phone == "+85294000001"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"message": "   "}, "Write a message."),
        ({"subject": ""}, "Enter a subject."),
        ({"contact_email": "not-an-email"}, "Enter a valid email address"),
        ({"contact_phone": "12ab"}, "A phone number contains digits only"),
        ({"contact_phone": "+852 1234"}, "is not a valid phone number"),
        ({"contact_email": "", "contact_phone": ""}, "Enter an email address or a mobile number"),
        ({"category": "nonsense"}, "Select a valid choice."),
    ],
)
def test_bad_guest_input_writes_nothing(
    client: Client, db: Any, data: dict[str, str], error: str
) -> None:
    # given a guest form that is wrong in one way
    values = {"contact_email": "guest@example.com", **data}
    # when
    response = _post(client, **values)
    # then
    assert response.status_code == 400
    assert error in response.content.decode()
    _nothing_written()


def test_errors_come_in_the_readers_language(client: Client, db: Any) -> None:
    # given a visitor reading Traditional Chinese
    from django import forms
    from django.utils import html, translation

    with translation.override("zh-hant"):
        expected = str(forms.ChoiceField.default_error_messages["invalid_choice"]) % {
            "value": "nonsense"
        }
    # when
    response = client.post(
        URL,
        {"subject": "x", "category": "nonsense", "message": "m", "contact_email": "a@example.com"},
        headers={"accept-language": "zh-hant"},
    )
    # then
    assert response.status_code == 400
    assert response["Content-Language"] == "zh-hant"
    assert html.escape(expected) in response.content.decode()
    _nothing_written()


def test_a_user_cannot_attach_someone_elses_line(
    owner_client: Client, owner_line: Any, make_line: Any
) -> None:
    # given
    other = make_line()
    # when
    response = _post(owner_client, line=other.pk)
    # then
    assert response.status_code == 400
    _nothing_written()


def test_the_action_refuses_a_guest_ticket_without_a_way_to_answer(db: Any) -> None:
    # given no account and no contact
    # when / then
    with pytest.raises(ValidationError):
        do_open_ticket(user=None, subject="Hi", category="other", body="Hello")
    _nothing_written()


def test_ticket_creation_is_rate_limited(owner_client: Client, owner: Any) -> None:
    # given five tickets in the last hour
    for n in range(5):
        assert _post(owner_client, subject=f"Try {n}").status_code == 302
    # when
    response = _post(owner_client, subject="One too many")
    # then
    assert response.status_code == 429
    assert "please wait an hour" in response.content.decode()
    assert Ticket.objects.count() == 5


def test_the_rate_limit_also_holds_per_address_for_guests(client: Client, db: Any) -> None:
    # given five guest tickets from one address
    for n in range(5):
        assert _post(client, subject=f"Try {n}", contact_email="g@example.com").status_code == 302
    # when a sixth comes from the same address with other contact details
    response = _post(client, contact_email="other@example.com")
    # then
    assert response.status_code == 429
    assert Ticket.objects.count() == 5
