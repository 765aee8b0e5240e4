"""Selling in the agent portal: number, plan, quote, confirm, done. The same
sale action as the API; a refusal is a translated form error and writes
nothing; a confirm form sent twice sells once."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from leb.agents.actions import quote_for_agent
from leb.agents.members import SALE_MAX_AGE, SaleTicket
from leb.agents.models import Agent, AgentMember, AgentTopUp
from leb.agents.queries import balance
from leb.audit.models import AuditEntry
from leb.common import clock
from leb.ledger.models import Transfer
from leb.notifications.models import Notification
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]
TICKET = re.compile(r'name="ticket" value="([^"]+)"')


def terminate(line: Any) -> None:
    """Validity long past: the line is terminated on read, before any sweep."""
    line.valid_until = clock.now() - timedelta(days=400)
    line.save(update_fields=["valid_until"])


def choose_number(client: Client, msisdn: str) -> str:
    answer = client.post(reverse("agent-portal:sell"), {"msisdn": msisdn})
    assert answer.status_code == 302, answer.content
    token = answer["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert answer["Location"] == reverse("agent-portal:sell_plans", args=[token])
    return token


def quote_page(client: Client, token: str, plan_code: str) -> tuple[Any, str]:
    page = client.get(reverse("agent-portal:sell_quote", args=[token, plan_code]))
    found = TICKET.search(page.content.decode())
    return page, found.group(1) if found else ""


def confirm(client: Client, token: str, plan_code: str, ticket: str, **extra: Any) -> Any:
    url = reverse("agent-portal:sell_quote", args=[token, plan_code])
    return client.post(url, {"ticket": ticket, **extra})


def written() -> dict[str, int]:
    return {
        "topups": AgentTopUp.objects.count(),
        "orders": TopUpOrder.objects.count(),
        "transfers": Transfer.objects.count(),
        "audit": AuditEntry.objects.count(),
        "outbox": Notification.objects.count(),
    }


def error_of(page: Any) -> str:
    found = re.search(r'data-testid="sell-error" data-code="([a-z_]*)"', page.content.decode())
    return found.group(1) if found else ""


def test_a_seller_sells_a_top_up_from_number_to_receipt(
    agent: Agent,
    seller_portal: Client,
    agent_seller: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    ledger_ok: Callable[[], None],
) -> None:
    # given a line and the agent's float
    line = make_line()
    before = balance(agent).available

    # when the seller enters the number and picks the plan
    token = choose_number(seller_portal, line.msisdn.replace("+852", "+852 "))
    plans = seller_portal.get(reverse("agent-portal:sell_plans", args=[token]))
    picked = seller_portal.post(
        reverse("agent-portal:sell_plans", args=[token]), {"plan": hkd_plan.code}
    )
    page, ticket = quote_page(seller_portal, token, hkd_plan.code)

    # then the quote is the API's: wholesale, retail, the days really added
    assert plans.status_code == 200
    assert f'data-plan="{hkd_plan.code}"' in plans.content.decode()
    assert picked["Location"] == reverse("agent-portal:sell_quote", args=[token, hkd_plan.code])
    api_quote = quote_for_agent(agent, line.msisdn, hkd_plan.code)
    body = page.content.decode()
    assert page.status_code == 200
    assert "HK$45.00" in body and "HK$50.00" in body
    assert api_quote.wholesale == 4500
    assert f'data-testid="quote-days">{api_quote.quote.days_added}<' in body
    assert ticket

    # when the seller confirms
    done = confirm(seller_portal, token, hkd_plan.code, ticket)

    # then one completed sale, paid from the float, with a receipt naming the agent
    topup = AgentTopUp.objects.get()
    assert done.status_code == 302
    assert done["Location"] == reverse("agent-portal:sale", args=[topup.public_id])
    assert topup.status == "completed" and topup.external_id.startswith("portal-")
    assert topup.order is not None and topup.order.status == OrderStatus.FULFILLED
    assert topup.order.actor == agent.actor
    assert balance(agent).available == before - 4500
    sale_page = seller_portal.get(done["Location"])
    sale_body = sale_page.content.decode()
    assert f'data-receipt="{topup.order.receipt_number}"' in sale_body
    receipt_link = re.search(r'href="([^"]+)" data-testid="sale-receipt-link"', sale_body)
    pdf_link = re.search(r'href="([^"]+)" data-testid="sale-receipt-pdf"', sale_body)
    assert receipt_link and pdf_link
    receipt = Client().get(receipt_link.group(1))
    assert receipt.status_code == 200
    assert agent.code in receipt.content.decode()
    pdf = Client().get(pdf_link.group(1))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    # and who sold it is in the audit log, with the sale
    entry = AuditEntry.objects.get(action="agent.portal.sale")
    assert entry.actor == f"agent:{agent.code}:member:{agent_seller.username}"
    assert entry.target == f"agent-topup:{topup.public_id}"
    ledger_ok()


def test_a_confirm_form_sent_twice_sells_once(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given a priced sale
    line = make_line()
    token = choose_number(seller_portal, line.msisdn)
    _page, ticket = quote_page(seller_portal, token, hkd_plan.code)

    # when the confirm button is pressed twice
    first = confirm(seller_portal, token, hkd_plan.code, ticket)
    second = confirm(seller_portal, token, hkd_plan.code, ticket)

    # then one top-up, one order, and both answers lead to it
    topup = AgentTopUp.objects.get()
    assert TopUpOrder.objects.count() == 1
    assert first["Location"] == second["Location"]
    assert first["Location"] == reverse("agent-portal:sale", args=[topup.public_id])
    assert balance(agent).available == 100_000 - 4500
    assert AuditEntry.objects.filter(action="agent.portal.sale").count() == 1


def test_two_confirm_pages_are_two_sales_each_with_its_own_external_id(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given two lines priced on two confirm pages
    first_line, second_line = make_line(), make_line()
    tokens = [choose_number(seller_portal, line.msisdn) for line in (first_line, second_line)]
    tickets = [quote_page(seller_portal, token, hkd_plan.code)[1] for token in tokens]

    # when both are confirmed
    for token, ticket in zip(tokens, tickets, strict=True):
        confirm(seller_portal, token, hkd_plan.code, ticket)

    # then
    assert AgentTopUp.objects.filter(status="completed").count() == 2
    assert len(set(AgentTopUp.objects.values_list("external_id", flat=True))) == 2


@pytest.mark.parametrize(
    ("msisdn", "message"),
    [
        ("12345", "This is not a valid phone number."),
        ("", "Enter the customer's phone number."),
        ("+85291234567", "No line in service has this number."),
    ],
)
def test_a_bad_or_unknown_number_is_a_form_error(
    agent: Agent, seller_portal: Client, msisdn: str, message: str
) -> None:
    # given
    before = written()

    # when
    answer = seller_portal.post(reverse("agent-portal:sell"), {"msisdn": msisdn})

    # then
    assert answer.status_code == 400
    assert message in html.unescape(answer.content.decode())
    assert written() == before


def test_a_terminated_line_cannot_be_sold_to(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given a line whose validity ended long ago (terminated on read)
    line = make_line()
    token = choose_number(seller_portal, line.msisdn)
    _page, ticket = quote_page(seller_portal, token, hkd_plan.code)
    terminate(line)
    before = written()

    # when
    plans = seller_portal.get(reverse("agent-portal:sell_plans", args=[token]))
    answer = confirm(seller_portal, token, hkd_plan.code, ticket)

    # then the plan is marked impossible, the confirmation refused, nothing written
    assert "This line cannot be topped up: it is not in service." in plans.content.decode()
    assert "disabled" in plans.content.decode()
    assert answer.status_code == 422
    assert "This line cannot be topped up: it is not in service." in answer.content.decode()
    assert written() == before


def test_a_plan_the_agent_may_not_sell_is_refused(
    make_agent: Callable[..., Agent],
    fund: Callable[[Agent, int], None],
    make_line: Callable[..., Any],
    hkd_plan: Any,
    fast_passwords: None,
) -> None:
    # given an agent allowed only another plan
    from leb.agents.tests.conftest import add_member, verified_client

    limited = make_agent(allowed_plan_codes=["hk-other"])
    fund(limited, 100_000)
    client = verified_client(add_member(limited, "limited-seller"))
    line = make_line()
    token = choose_number(client, line.msisdn)
    before = written()

    # when
    plans = client.get(reverse("agent-portal:sell_plans", args=[token]))
    picked = client.post(reverse("agent-portal:sell_plans", args=[token]), {"plan": hkd_plan.code})
    quote = client.get(reverse("agent-portal:sell_quote", args=[token, hkd_plan.code]))
    forged = confirm(client, token, hkd_plan.code, "forged")

    # then
    assert f'data-plan="{hkd_plan.code}"' not in plans.content.decode()
    assert picked.status_code == 400
    assert "Choose one of the plans you may sell to this line." in picked.content.decode()
    assert quote.status_code == 422
    assert "You may not sell this plan for this line." in quote.content.decode()
    assert 'data-testid="sell-confirm"' not in quote.content.decode()
    assert forged.status_code == 400
    assert written() == before


def test_not_enough_float_is_a_form_error_and_writes_nothing(
    make_agent: Callable[..., Agent],
    fund: Callable[[Agent, int], None],
    make_line: Callable[..., Any],
    hkd_plan: Any,
    fast_passwords: None,
) -> None:
    # given an agent whose float is below the wholesale price
    from leb.agents.tests.conftest import add_member, verified_client

    poor = make_agent()
    fund(poor, 4000)
    client = verified_client(add_member(poor, "poor-seller"))
    token = choose_number(client, make_line().msisdn)
    _page, ticket = quote_page(client, token, hkd_plan.code)
    before = written()

    # when
    answer = confirm(client, token, hkd_plan.code, ticket)

    # then
    assert answer.status_code == 422
    assert error_of(answer) == "insufficient_float"
    assert "Your float is too low for this top-up." in answer.content.decode()
    assert written() == before
    assert balance(poor).available == 4000


@pytest.mark.parametrize(
    "limits",
    [{"max_transaction_amount": 4000}, {"daily_count_limit": 1}, {"daily_amount_limit": 6000}],
)
def test_a_limit_reached_is_a_form_error_and_writes_nothing(
    make_agent: Callable[..., Agent],
    fund: Callable[[Agent, int], None],
    make_line: Callable[..., Any],
    hkd_plan: Any,
    fast_passwords: None,
    limits: dict[str, int],
) -> None:
    # given an agent with a limit, and (for the daily ones) one sale today
    from leb.agents.tests.conftest import add_member, verified_client

    limited = make_agent(**limits)
    fund(limited, 100_000)
    client = verified_client(add_member(limited, "limit-seller"))
    if "max_transaction_amount" not in limits:
        token = choose_number(client, make_line().msisdn)
        confirm(client, token, hkd_plan.code, quote_page(client, token, hkd_plan.code)[1])
        assert AgentTopUp.objects.count() == 1
    token = choose_number(client, make_line().msisdn)
    _page, ticket = quote_page(client, token, hkd_plan.code)
    before = written()

    # when
    answer = confirm(client, token, hkd_plan.code, ticket)

    # then
    assert answer.status_code == 422
    assert error_of(answer) == "limit_reached"
    assert "This top-up is over one of your limits." in answer.content.decode()
    assert written() == before


def test_the_same_plan_again_within_minutes_needs_a_tick_then_sells(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given a sale of the plan to the number a minute ago
    line = make_line()
    token = choose_number(seller_portal, line.msisdn)
    confirm(seller_portal, token, hkd_plan.code, quote_page(seller_portal, token, hkd_plan.code)[1])
    _page, ticket = quote_page(seller_portal, token, hkd_plan.code)
    before = written()

    # when the seller confirms the same again
    refused = confirm(seller_portal, token, hkd_plan.code, ticket)

    # then it is refused, with the box to say it is meant, and nothing written
    assert refused.status_code == 422
    assert error_of(refused) == "recently_topped_up"
    assert 'name="allow_repeat"' in refused.content.decode()
    assert written() == before

    # when the box is ticked
    retry_ticket = TICKET.search(refused.content.decode())
    assert retry_ticket is not None
    sold = confirm(seller_portal, token, hkd_plan.code, retry_ticket.group(1), allow_repeat="on")

    # then the second sale is made
    assert sold.status_code == 302
    assert AgentTopUp.objects.filter(status="completed").count() == 2


def test_changed_terms_are_shown_again_before_anything_is_sold(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given a confirm page, then the agent's discount changes
    line = make_line()
    token = choose_number(seller_portal, line.msisdn)
    _page, ticket = quote_page(seller_portal, token, hkd_plan.code)
    Agent.objects.filter(pk=agent.pk).update(discount_percent=5)
    before = written()

    # when
    answer = confirm(seller_portal, token, hkd_plan.code, ticket)

    # then the new price is shown to confirm again, and nothing is sold
    assert answer.status_code == 409
    assert "The terms of this top-up changed since you saw them." in answer.content.decode()
    assert "HK$47.50" in answer.content.decode()
    assert written() == before


def test_a_confirm_page_left_open_too_long_is_priced_again(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given
    line = make_line()
    token = choose_number(seller_portal, line.msisdn)
    _page, ticket = quote_page(seller_portal, token, hkd_plan.code)
    before = written()

    # when the seller confirms after the ticket's time
    with clock.frozen(now + timedelta(seconds=SALE_MAX_AGE + 1)):
        answer = confirm(seller_portal, token, hkd_plan.code, ticket)

    # then
    assert answer.status_code == 409
    assert "This page was open too long." in answer.content.decode()
    assert written() == before


def test_a_ticket_for_another_line_or_plan_is_refused(
    agent: Agent,
    seller_portal: Client,
    agent_seller: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
) -> None:
    # given a genuine ticket for one line, posted to another line's page
    first, second = make_line(), make_line()
    member = AgentMember.objects.get(user=agent_seller)
    first_token = choose_number(seller_portal, first.msisdn)
    second_token = choose_number(seller_portal, second.msisdn)
    ticket = SaleTicket.new(first.pk, hkd_plan.code, 4500, 180, "x").to_token(member)
    before = written()

    # when
    answer = confirm(seller_portal, second_token, hkd_plan.code, ticket)
    broken = confirm(seller_portal, first_token, hkd_plan.code, ticket[:-3] + "abc")

    # then
    assert answer.status_code == 400 and broken.status_code == 400
    assert written() == before


def test_a_number_token_that_expired_asks_for_the_number_again(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    token = choose_number(seller_portal, make_line().msisdn)

    # when
    with clock.frozen(now + timedelta(hours=1)):
        answer = seller_portal.get(reverse("agent-portal:sell_plans", args=[token]))

    # then
    assert answer.status_code == 400
    assert "This page was open too long. Enter the number again." in answer.content.decode()


def test_the_pages_and_errors_are_translated(
    agent: Agent, seller_portal: Client, make_line: Callable[..., Any], hkd_plan: Any
) -> None:
    # given a Traditional Chinese browser
    seller_portal.cookies["django_language"] = "zh-hant"
    token = choose_number(seller_portal, make_line().msisdn)

    # when
    page, _ticket = quote_page(seller_portal, token, hkd_plan.code)
    bad = seller_portal.post(reverse("agent-portal:sell"), {"msisdn": "12345"})

    # then
    assert page.status_code == 200
    assert '<html lang="zh-hant">' in page.content.decode()
    with translation.override("zh-hant"):
        assert str(translation.gettext("This is not a valid phone number.")) in (
            bad.content.decode()
        )


def test_a_sale_is_shown_only_to_its_agent_and_a_missing_one_is_404(
    agent: Agent, seller_portal: Client
) -> None:
    # when
    answer = seller_portal.get(reverse("agent-portal:sale", args=["f" * 32]))

    # then
    assert answer.status_code == 404
