from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from leb.support.models import Ticket, TicketCategory


def _url(order: Any) -> str:
    return reverse("support:report_topup", args=[order.public_id])


def test_the_owner_reports_a_failed_top_up(
    owner_client: Client, owner: Any, failed_order: Any
) -> None:
    # given a failed top-up of the owner's line
    # when they open the report page
    page = owner_client.get(_url(failed_order))
    # then the order is shown and the subject prefilled
    assert page.status_code == 200
    text = page.content.decode()
    assert "Card declined" in text
    assert f"Problem with top-up {str(failed_order.public_id)[:8].upper()}" in text
    assert 'name="category"' not in text
    # when they send it
    response = owner_client.post(
        _url(failed_order), {"subject": "Card declined twice", "message": "Please check."}
    )
    # then the ticket is about that order and its line
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert ticket.user == owner
    assert ticket.order == failed_order
    assert ticket.line == failed_order.line
    assert ticket.category == TicketCategory.TOPUP


def test_the_line_owner_may_report_an_order_someone_else_paid(
    client: Client, owner_line: Any, hkd_plan: Any, owner_client: Client, now: Any
) -> None:
    # given a guest top-up (no customer) of the owner's line
    from leb.topups.actions import do_create_order

    order = do_create_order(
        line=owner_line, channel="web", plan=hkd_plan, idempotency_key="guest-paid", now=now
    )
    # when / then
    assert owner_client.get(_url(order)).status_code == 200
    assert client.get(_url(order)).status_code == 404


def test_an_outsider_gets_404(outsider_client: Client, failed_order: Any) -> None:
    # given someone else's failed order
    # when
    shown = outsider_client.get(_url(failed_order))
    sent = outsider_client.post(_url(failed_order), {"subject": "x", "message": "y"})
    # then
    assert shown.status_code == 404
    assert sent.status_code == 404
    assert Ticket.objects.count() == 0


def test_the_browser_that_paid_may_report_as_a_guest(
    client: Client, failed_order: Any, attempt: Any
) -> None:
    # given a visitor whose session started the payment attempt
    session = client.session
    session["payments_attempts"] = [str(attempt.public_id)]
    session.save()
    # when
    response = client.post(
        _url(failed_order),
        {
            "subject": "Paid but failed",
            "message": "Money left my card.",
            "contact_email": "p@example.com",
        },
    )
    # then
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert ticket.user is None
    assert ticket.order == failed_order
    assert ticket.contact_email == "p@example.com"


def test_a_session_with_another_orders_attempt_gets_404(
    client: Client, failed_order: Any, attempt: Any, make_line: Any, hkd_plan: Any, now: Any
) -> None:
    # given a session that paid a different order
    from leb.topups.actions import do_create_order

    other = do_create_order(
        line=make_line(), channel="web", plan=hkd_plan, idempotency_key="other", now=now
    )
    session = client.session
    session["payments_attempts"] = [str(attempt.public_id)]
    session.save()
    # when / then
    assert client.get(_url(other)).status_code == 404
    assert client.get(_url(failed_order)).status_code == 200


def test_an_unknown_order_gets_404(owner_client: Client, db: Any) -> None:
    # given / when
    response = owner_client.get("/support/topup/00000000-0000-0000-0000-000000000000/report/")
    # then
    assert response.status_code == 404


def test_the_reason_is_leb_wording_in_the_readers_language(
    owner_client: Client, failed_order: Any, attempt: Any
) -> None:
    # given a declined attempt whose provider said something in its own words
    from django.utils import translation

    from leb.payments.actions import failure_message

    attempt.failure_code = "insufficient_funds"
    attempt.failure_message = "Your card has insufficient funds. (provider text)"
    attempt.save(update_fields=["failure_code", "failure_message"])
    with translation.override("zh-hant"):
        expected = failure_message("insufficient_funds")
    # when a Traditional Chinese reader opens the report page
    page = owner_client.get(_url(failed_order), HTTP_ACCEPT_LANGUAGE="zh-hant")
    # then leb's translated reason is shown, never the provider's message
    text = page.content.decode()
    assert expected in text
    assert expected != "Card declined"
    assert "provider text" not in text
