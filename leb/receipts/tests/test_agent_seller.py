"""A top-up an agent sold names the agent on the receipt page, the PDF and
the public verification page: display name, code and the public check."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import translation
from pypdf import PdfReader

from leb.agents.actions import (
    do_approve_deposit,
    do_create_agent,
    do_create_agent_topup,
    do_record_deposit,
    do_set_agent_status,
)
from leb.agents.models import Agent, AgentStatus
from leb.receipts import pdf
from leb.receipts.queries import build_receipt, seller_of, verify_path
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db
LANGUAGES = ["en", "zh-hans", "zh-hant"]


@pytest.fixture
def agent(now: datetime) -> Agent:
    made = do_create_agent(
        actor="staff:test",
        now=now,
        legal_name="Kowloon Phones Ltd",
        display_name="Kowloon Phones",
        region="HK",
        currency="HKD",
        discount_percent=Decimal("10"),
    )
    users = get_user_model().objects
    recorder = users.create_superuser("fin-a", "fin-a@example.com", "pw-fin-a-123")
    approver = users.create_superuser("fin-b", "fin-b@example.com", "pw-fin-b-123")
    deposit = do_record_deposit(
        made, amount=100_000, currency="HKD", bank_reference="BANK-1", staff=recorder, now=now
    )
    do_approve_deposit(deposit, staff=approver, now=now)
    return made


@pytest.fixture
def sold(agent: Agent, line: Any, hkd_plan: Any, now: datetime) -> TopUpOrder:
    result = do_create_agent_topup(
        agent, external_id="INV-1", msisdn=line.msisdn, plan_code=hkd_plan.code, now=now
    )
    order = result.topup.order
    assert order is not None and order.receipt_number
    return TopUpOrder.objects.select_related("line__phone_number", "plan").get(pk=order.pk)


def check_url(agent: Agent) -> str:
    return f"https://leb.example/agents/verify/?q={agent.code}"


def test_the_seller_is_the_agent_looked_up_by_its_code(sold: TopUpOrder, agent: Agent) -> None:
    # when
    seller = seller_of(sold)

    # then
    assert sold.actor == f"agent:{agent.code}"
    assert (seller.kind, seller.name, seller.code) == ("agent", "Kowloon Phones", agent.code)
    assert seller.check_url == check_url(agent)


def test_a_quote_agent_code_names_the_agent_too(order: Any, agent: Agent) -> None:
    # given an agent-channel order whose quote carries the code
    order.channel = "agent"
    order.quote = dict(order.quote, agent_code=agent.code.lower())
    order.save(update_fields=["channel", "quote"])

    # when / then
    assert seller_of(order).code == agent.code


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_receipt_page_names_the_agent_and_links_to_the_check(
    owner_client: Client, sold: TopUpOrder, agent: Agent, language: str
) -> None:
    # when
    response = owner_client.get(
        reverse("receipts:detail", args=[sold.receipt_number]), HTTP_ACCEPT_LANGUAGE=language
    )

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="{check_url(agent)}" data-testid="receipt-agent-check"' in html
    if language == "en":
        assert f"Authorised agent Kowloon Phones ({agent.code})" in html
    else:
        # Chinese sets the code in full-width brackets.
        assert f"Kowloon Phones\uff08{agent.code}\uff09" in html


def test_the_public_verification_page_names_the_agent(
    anonymous: Client, sold: TopUpOrder, agent: Agent
) -> None:
    # when
    response = anonymous.get(verify_path(sold))

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Sold by authorised agent Kowloon Phones ({agent.code})" in html
    assert f'href="{check_url(agent)}" data-testid="verify-agent-check"' in html


def test_the_verification_page_of_a_web_top_up_names_no_agent(
    anonymous: Client, order: Any
) -> None:
    # when
    html = anonymous.get(verify_path(order)).content.decode()

    # then
    assert 'data-testid="verify-seller"' not in html


def test_the_receipt_names_the_agent_even_after_it_was_suspended(
    owner_client: Client, sold: TopUpOrder, agent: Agent, now: datetime
) -> None:
    # given: it was authorised when it sold; the link shows where it stands now
    do_set_agent_status(agent, AgentStatus.SUSPENDED, actor="staff:test", now=now)

    # when
    html = owner_client.get(reverse("receipts:detail", args=[sold.receipt_number])).content
    check = owner_client.get(f"/agents/verify/?q={agent.code}").content.decode()

    # then
    assert f"Kowloon Phones ({agent.code})".encode() in html
    assert 'data-state="suspended"' in check


def _pdf_text(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_pdf_has_the_agent_text_and_the_check_url(
    sold: TopUpOrder, agent: Agent, language: str
) -> None:
    # when
    with translation.override(language):
        content = pdf.render(build_receipt(sold), tz=UTC)

    # then
    text = _pdf_text(content).replace("\n", "")
    assert agent.code in text
    assert "Kowloon Phones" in text
    assert check_url(agent) in text
    if language == "en":
        assert f"Sold by authorised agent Kowloon Phones ({agent.code})" in text


def test_the_owner_downloads_the_pdf_with_the_agent(
    owner_client: Client, sold: TopUpOrder, agent: Agent
) -> None:
    # when
    response = owner_client.get(reverse("receipts:pdf", args=[sold.receipt_number]))

    # then
    assert response.status_code == 200
    assert check_url(agent) in _pdf_text(response.content).replace("\n", "")
