"""Reporting a suspected fake agent from the agent check: a support ticket of
the "fraud" category carrying what was searched and what the seller did."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from leb.audit.models import AuditEntry
from leb.support.models import Ticket, TicketCategory, TicketMessage

URL = "/support/fraud/"
LANGUAGES = ["en", "zh-hans", "zh-hant"]


def _post(client: Client, **fields: str) -> Any:
    data = {
        "searched": "HK-FAKE99",
        "seller_name": "Cheap Sims HK",
        "seller_contact": "@cheapsims",
        "message": "They asked for my PIN on WhatsApp.",
        **fields,
    }
    return client.post(URL, data)


def _nothing_written() -> None:
    assert Ticket.objects.count() == 0
    assert TicketMessage.objects.count() == 0
    assert not AuditEntry.objects.filter(action="ticket.open").exists()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_form_carries_what_was_searched(client: Client, db: Any, language: str) -> None:
    # when
    response = client.get(URL, {"q": "@cheapsims"}, HTTP_ACCEPT_LANGUAGE=language)

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert 'data-testid="fraud-report"' in html
    assert 'value="@cheapsims"' in html
    assert 'name="contact_email"' in html  # a guest leaves a way to answer


def test_a_guest_reports_a_fake_agent(client: Client, db: Any) -> None:
    # when
    response = _post(client, contact_email="Guest@Example.com")

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/support/t/")
    ticket = Ticket.objects.get()
    assert ticket.category == TicketCategory.FRAUD
    assert ticket.user is None and ticket.contact_email == "guest@example.com"
    assert ticket.subject == "Suspected fake agent: HK-FAKE99"
    body = ticket.messages.get().body
    assert "Checked: HK-FAKE99" in body
    assert "Seller's name: Cheap Sims HK" in body
    assert "Seller's shop address, handle or number: @cheapsims" in body
    assert body.endswith("They asked for my PIN on WhatsApp.")
    assert AuditEntry.objects.get(action="ticket.open").actor == "guest"


def test_a_signed_in_subscriber_reports_without_contact_fields(
    owner_client: Client, owner: Any
) -> None:
    # when
    page = owner_client.get(URL, {"q": "HK-FAKE99"}).content.decode()
    response = _post(owner_client, seller_name="", seller_contact="")

    # then
    assert 'name="contact_email"' not in page
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.user == owner and ticket.category == "fraud"
    assert "Seller's name" not in ticket.messages.get().body
    assert response["Location"] == reverse("support:ticket", args=[ticket.public_id])


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"searched": ""}, "Enter the code, address, number or handle you checked."),
        ({"message": "  "}, "Tell us what happened."),
        ({"contact_email": "", "contact_phone": ""}, "Enter an email address or a mobile number"),
        ({"contact_email": "nope"}, "Enter a valid email address"),
        ({"contact_phone": "+852 1234"}, "is not a valid phone number"),
        ({"searched": "x" * 201}, "Ensure this value has at most 200 characters"),
    ],
)
def test_bad_input_writes_nothing(
    client: Client, db: Any, data: dict[str, str], error: str
) -> None:
    # given
    values = {"contact_email": "guest@example.com", **data}

    # when
    response = _post(client, **values)

    # then
    assert response.status_code == 400
    assert error in response.content.decode()
    _nothing_written()


def test_reports_share_the_ticket_rate_limit(client: Client, db: Any) -> None:
    # given five tickets from one address
    for n in range(5):
        assert (
            _post(client, searched=f"HK-FAKE0{n}", contact_email="g@example.com").status_code == 302
        )

    # when
    response = _post(client, contact_email="other@example.com")

    # then
    assert response.status_code == 429
    assert "please wait an hour" in response.content.decode()
    assert Ticket.objects.count() == 5


def test_staff_see_the_category_in_the_back_office(client: Client, db: Any) -> None:
    # given a report and a staff member
    _post(client, contact_email="guest@example.com")
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(staff)

    # when
    listing = client.get(
        reverse("admin:support_ticket_changelist"), {"category__exact": "fraud"}
    ).content.decode()

    # then
    assert "Suspected fake agent: HK-FAKE99" in listing
    assert "Suspected fake agent" in listing  # the category's label, also in the filter


def test_the_contact_form_offers_the_category(client: Client, db: Any) -> None:
    # when
    html = client.get("/support/", {"category": "fraud"}).content.decode()

    # then
    assert '<option value="fraud" selected>Suspected fake agent</option>' in html
