from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from leb.audit.models import AuditEntry
from leb.support.actions import do_close, do_open_ticket, do_reply
from leb.support.models import Ticket, TicketMessage, TicketStatus
from leb.support.tokens import make_token
from leb.testing import deliver_outbox


@pytest.fixture
def ticket(owner: Any) -> Ticket:
    return do_open_ticket(user=owner, subject="Validity", category="validity", body="When?")


@pytest.fixture
def guest_ticket(db: Any) -> Ticket:
    return do_open_ticket(
        user=None, subject="Guest", category="other", body="Hello", contact_email="g@example.com"
    )


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(
        username="agent", email="agent@example.com", password="x", is_staff=True, is_superuser=True
    )


def _detail(ticket: Ticket) -> str:
    return reverse("support:ticket", args=[ticket.public_id])


def test_staff_reply_in_the_admin_is_shown_to_the_user_and_emailed(
    ticket: Ticket,
    staff: Any,
    owner_client: Client,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given a staff member on the ticket's admin page
    admin = Client()
    admin.force_login(staff, backend="leb.accounts.backends.EmailOrPhoneBackend")
    url = reverse("admin:support_ticket_change", args=[ticket.pk])
    assert admin.get(url).status_code == 200
    # when they answer
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            url,
            {
                "category": "validity",
                "reply": "Your line is valid until December.",
                "messages-TOTAL_FORMS": "1",
                "messages-INITIAL_FORMS": "1",
                "messages-MIN_NUM_FORMS": "0",
                "messages-MAX_NUM_FORMS": "1000",
                "messages-0-id": str(ticket.messages.get().pk),
                "messages-0-ticket": str(ticket.pk),
            },
        )
    deliver_outbox()
    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.ANSWERED
    reply = ticket.messages.get(from_staff=True)
    assert reply.author == staff
    assert AuditEntry.objects.filter(action="ticket.reply", actor="staff:agent").exists()
    page = owner_client.get(_detail(ticket)).content.decode()
    assert "Your line is valid until December." in page
    assert "leb support" in page
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["owner@example.com"]
    assert "Your line is valid until December." in mailoutbox[0].body
    assert "https://leb.example" + _detail(ticket) in mailoutbox[0].body


def test_the_reply_email_is_in_the_tickets_language(
    owner: Any, staff: Any, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    # given a ticket written in Traditional Chinese
    ticket = do_open_ticket(
        user=owner, subject="有效期", category="validity", body="?", language="zh-hant"
    )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        do_reply(ticket, body="OK", author=staff, as_staff=True)
    deliver_outbox()
    # then the email goes out under that language (subject keeps the reference)
    assert len(mailoutbox) == 1
    assert ticket.reference in mailoutbox[0].subject


def test_a_guest_with_only_a_phone_gets_a_text(
    db: Any, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given
    import leb.sms

    ticket = do_open_ticket(
        user=None, subject="Hi", category="other", body="?", contact_phone="+85294000001"
    )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        do_reply(ticket, body="Answer", author=staff, as_staff=True)
    deliver_outbox()
    # then
    assert [m.to for m in leb.sms.outbox] == ["+85294000001"]
    assert "/support/t/" in leb.sms.outbox[0].text


def test_the_user_replies_and_the_ticket_waits_for_staff_again(
    ticket: Ticket, staff: Any, owner_client: Client
) -> None:
    # given an answered ticket
    do_reply(ticket, body="Answer", author=staff, as_staff=True)
    # when
    response = owner_client.post(_detail(ticket), {"message": "Thanks, one more thing"})
    # then
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert ticket.messages.count() == 3


def test_an_empty_reply_writes_nothing(ticket: Ticket, owner_client: Client) -> None:
    # given / when
    response = owner_client.post(_detail(ticket), {"message": " "})
    # then
    assert response.status_code == 400
    assert ticket.messages.count() == 1


def test_outsiders_get_404_and_guests_are_sent_to_sign_in(
    ticket: Ticket, outsider_client: Client, client: Client
) -> None:
    # given someone else's ticket
    # when / then
    assert outsider_client.get(_detail(ticket)).status_code == 404
    assert outsider_client.post(_detail(ticket), {"message": "hi"}).status_code == 404
    assert "Validity" not in outsider_client.get(reverse("support:tickets")).content.decode()
    for url in (_detail(ticket), reverse("support:tickets")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    assert ticket.messages.count() == 1


def test_the_guest_link_shows_the_thread_and_takes_a_reply(
    guest_ticket: Ticket, client: Client
) -> None:
    # given
    url = reverse("support:guest_thread", args=[make_token(guest_ticket)])
    # when
    shown = client.get(url)
    replied = client.post(url, {"message": "Any news?"})
    # then
    assert shown.status_code == 200
    assert "Hello" in shown.content.decode()
    assert replied.status_code == 302
    assert guest_ticket.messages.last().body == "Any news?"  # type: ignore[union-attr]
    assert AuditEntry.objects.filter(action="ticket.reply", actor="guest").exists()


def test_a_tampered_or_foreign_token_gets_404(
    guest_ticket: Ticket, ticket: Ticket, client: Client
) -> None:
    # given
    token = make_token(guest_ticket)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    # when / then
    assert client.get(f"/support/t/{tampered}/").status_code == 404
    assert client.get("/support/t/garbage/").status_code == 404
    # an account's ticket is never readable by link
    assert client.get(f"/support/t/{make_token(ticket)}/").status_code == 404


def test_a_closed_ticket_takes_no_customer_reply(ticket: Ticket, owner_client: Client) -> None:
    # given
    do_close(ticket, actor="staff:agent")
    # when
    response = owner_client.post(_detail(ticket), {"message": "Reopen?"})
    # then
    assert response.status_code == 400
    assert ticket.messages.count() == 1
    assert "Start a new one" in owner_client.get(_detail(ticket)).content.decode()
    with pytest.raises(ValidationError):
        do_reply(ticket, body="x", author=ticket.user)


def test_only_the_owner_or_staff_may_reply(ticket: Ticket, outsider: Any) -> None:
    # given / when / then
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        do_reply(ticket, body="x", author=outsider)
    with pytest.raises(PermissionDenied):
        do_reply(ticket, body="x", author=outsider, as_staff=True)
    with pytest.raises(PermissionDenied):
        do_reply(ticket, body="x", guest=True)
    assert TicketMessage.objects.count() == 1


def test_the_admin_lists_filters_and_closes(
    ticket: Ticket, guest_ticket: Ticket, staff: Any
) -> None:
    # given
    admin = Client()
    admin.force_login(staff, backend="leb.accounts.backends.EmailOrPhoneBackend")
    url = reverse("admin:support_ticket_changelist")
    # when
    listed = admin.get(url, {"status__exact": "open", "category__exact": "other", "q": "guest"})
    closed = admin.post(
        url, {"action": "close_tickets", "_selected_action": [ticket.pk, guest_ticket.pk]}
    )
    # then
    assert listed.status_code == 200
    assert "g@example.com" in listed.content.decode()
    assert "owner@example.com" not in listed.content.decode()
    assert closed.status_code == 302
    assert set(Ticket.objects.values_list("status", flat=True)) == {TicketStatus.CLOSED}
    assert AuditEntry.objects.filter(action="ticket.close").count() == 2


def test_the_tickets_list_has_a_fixed_query_budget(
    owner: Any, owner_client: Client, owner_line: Any, django_assert_num_queries: Any
) -> None:
    # given one ticket, and a first request that fills the caches
    def add(n: int) -> None:
        for i in range(n):
            do_open_ticket(user=owner, subject=f"T{i}", category="other", body="b", line=owner_line)

    add(1)
    url = reverse("support:tickets")
    owner_client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert owner_client.get(url).status_code == 200
    # when there are many more
    add(14)
    # then the page costs the same
    with django_assert_num_queries(len(one.captured_queries)):
        response = owner_client.get(url)
    assert response.content.decode().count('class="support-item') == 15
    assert len(one.captured_queries) <= 8


def test_an_unproven_address_gets_no_answer_by_email(
    db: Any, staff: Any, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    # given an account whose address was never verified (it may be someone else's)
    from leb.accounts.actions import do_register_user

    user = do_register_user(
        email="typo@example.com", phone="", password="correct horse 42", language="en"
    )
    ticket = do_open_ticket(user=user, subject="Hi", category="other", body="?")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        do_reply(ticket, body="Private answer", author=staff, as_staff=True)
    deliver_outbox()
    # then the answer waits on the site only
    assert mailoutbox == []
    assert ticket.messages.filter(from_staff=True).exists()


def test_a_phone_account_gets_the_answer_by_text_once_verified(
    db: Any, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given two phone-only accounts, one verified
    import leb.sms
    from leb.accounts.actions import do_register_user

    proven = do_register_user(
        email="", phone="+85294000002", password="correct horse 42", language="en", verified=True
    )
    unproven = do_register_user(
        email="", phone="+85294000003", password="correct horse 42", language="en"
    )
    tickets = [
        do_open_ticket(user=user, subject="Hi", category="other", body="?")
        for user in (proven, unproven)
    ]
    # when both are answered
    with django_capture_on_commit_callbacks(execute=True):
        for ticket in tickets:
            do_reply(ticket, body="Answer", author=staff, as_staff=True)
    deliver_outbox()
    # then only the verified number is texted
    assert [m.to for m in leb.sms.outbox] == ["+85294000002"]
