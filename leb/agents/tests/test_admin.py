"""The back office: agents, keys (the secret shown once), deposits with two
people, status changes and reversals, each audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.test import Client

from leb.agents.models import (
    Agent,
    AgentApiKey,
    AgentDeposit,
    AgentStatus,
    AgentTopUp,
    AgentTopUpStatus,
    DepositStatus,
)
from leb.agents.queries import balance
from leb.audit.models import AuditEntry

pytestmark = pytest.mark.django_db
OPS = "/ops/agents"


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_every_agent_page_opens(recorder: Any, agent: Agent, key: Any) -> None:
    # given
    client = signed_in(recorder)

    # when
    pages = [
        client.get(f"{OPS}/agent/"),
        client.get(f"{OPS}/agent/{agent.pk}/change/"),
        client.get(f"{OPS}/agent/add/"),
        client.get(f"{OPS}/agentapikey/"),
        client.get(f"{OPS}/agentapikey/{key.key.pk}/change/"),
        client.get(f"{OPS}/agentdeposit/"),
        client.get(f"{OPS}/agentdeposit/add/"),
        client.get(f"{OPS}/agenttopup/"),
    ]

    # then
    assert [page.status_code for page in pages] == [200] * len(pages)
    assert key.secret not in pages[4].content.decode()
    assert key.key.salt not in pages[4].content.decode()


def test_staff_add_an_agent_and_it_gets_a_code(recorder: Any) -> None:
    # given
    client = signed_in(recorder)

    # when
    response = client.post(
        f"{OPS}/agent/add/",
        {
            "legal_name": "Mong Kok Mobile Ltd",
            "display_name": "MK Mobile",
            "region": "hk",
            "currency": "hkd",
            "allowed_plan_codes": "[]",
            "discount_percent": "8",
            "plan_discounts-TOTAL_FORMS": "0",
            "plan_discounts-INITIAL_FORMS": "0",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
            "channels-TOTAL_FORMS": "0",
            "channels-INITIAL_FORMS": "0",
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
        },
    )

    # then
    assert response.status_code == 302, response.content.decode()[:3000]
    agent = Agent.objects.get()
    assert agent.code.startswith("HK-") and len(agent.code) == 9
    assert agent.currency == "HKD"
    assert AuditEntry.objects.filter(action="agent.add").count() == 1


def test_a_deposit_recorded_by_one_and_approved_by_another_in_the_back_office(
    recorder: Any, approver: Any, make_agent: Callable[..., Agent], ledger_ok: Any
) -> None:
    # given
    agent = make_agent()
    signed_in(recorder).post(
        f"{OPS}/agentdeposit/add/",
        {"agent": agent.pk, "amount": "30000", "currency": "HKD", "bank_reference": "BOC-77"},
    )
    deposit = AgentDeposit.objects.get()
    action = {"action": "approve", helpers.ACTION_CHECKBOX_NAME: [deposit.pk]}

    # when
    signed_in(recorder).post(f"{OPS}/agentdeposit/", action)
    refused = AgentDeposit.objects.get().status
    signed_in(approver).post(f"{OPS}/agentdeposit/", action)

    # then
    assert refused == DepositStatus.PENDING
    assert AgentDeposit.objects.get().status == DepositStatus.APPROVED
    assert balance(agent).available == 30_000
    ledger_ok()


def test_a_deposit_is_rejected_with_a_reason(
    recorder: Any, approver: Any, make_agent: Callable[..., Agent]
) -> None:
    # given
    agent = make_agent()
    signed_in(recorder).post(
        f"{OPS}/agentdeposit/add/",
        {"agent": agent.pk, "amount": "30000", "currency": "HKD", "bank_reference": "BOC-78"},
    )
    deposit = AgentDeposit.objects.get()
    client = signed_in(approver)
    action = {"action": "reject", helpers.ACTION_CHECKBOX_NAME: [deposit.pk]}

    # when
    confirm = client.post(f"{OPS}/agentdeposit/", action)
    client.post(f"{OPS}/agentdeposit/", {**action, "apply": "yes", "reason": "not received"})

    # then
    assert confirm.status_code == 200
    deposit.refresh_from_db()
    assert (deposit.status, deposit.note) == (DepositStatus.REJECTED, "not received")


def test_a_deposit_in_another_currency_is_a_form_error(
    recorder: Any, make_agent: Callable[..., Agent]
) -> None:
    # given
    agent = make_agent()

    # when
    response = signed_in(recorder).post(
        f"{OPS}/agentdeposit/add/",
        {"agent": agent.pk, "amount": "30000", "currency": "GBP", "bank_reference": "BOC-79"},
    )

    # then
    assert response.status_code == 200
    assert AgentDeposit.objects.count() == 0


def test_creating_a_key_shows_the_secret_once_and_revoking_is_audited(
    recorder: Any, agent: Agent
) -> None:
    # given
    client = signed_in(recorder)

    # when
    shown = client.post(
        f"{OPS}/agent/", {"action": "create_key", helpers.ACTION_CHECKBOX_NAME: [agent.pk]}
    )
    key = AgentApiKey.objects.get()
    client.post(f"{OPS}/agentapikey/", {"action": "revoke", helpers.ACTION_CHECKBOX_NAME: [key.pk]})

    # then
    assert "las_" in shown.content.decode()
    assert key.key_id in shown.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.filter(action="agent.key.revoke").count() == 1


def test_rotating_a_key_in_the_back_office_shows_the_new_secret(recorder: Any, key: Any) -> None:
    # when
    shown = signed_in(recorder).post(
        f"{OPS}/agentapikey/", {"action": "rotate", helpers.ACTION_CHECKBOX_NAME: [key.key.pk]}
    )

    # then
    assert AgentApiKey.objects.count() == 2
    assert "las_" in shown.content.decode()
    key.key.refresh_from_db()
    assert key.key.valid_until is not None


def test_suspend_and_reactivate_from_the_back_office(recorder: Any, agent: Agent) -> None:
    # given
    client = signed_in(recorder)
    chosen = {helpers.ACTION_CHECKBOX_NAME: [agent.pk], "apply": "yes", "reason": "check"}

    # when
    client.post(f"{OPS}/agent/", {**chosen, "action": "suspend"})
    suspended = Agent.objects.get().status
    client.post(f"{OPS}/agent/", {**chosen, "action": "reactivate"})

    # then
    assert suspended == AgentStatus.SUSPENDED
    assert Agent.objects.get().status == AgentStatus.ACTIVE
    assert AuditEntry.objects.filter(action__in=["agent.suspended", "agent.active"]).count() == 2


def test_a_sale_is_reversed_from_the_back_office(
    recorder: Any, agent: Agent, make_line: Callable[..., Any], hkd_plan: Any, ledger_ok: Any
) -> None:
    # given
    from leb.agents.actions import do_create_agent_topup

    topup = do_create_agent_topup(
        agent, external_id="x", msisdn=make_line().msisdn, plan_code=hkd_plan.code
    ).topup

    # when
    signed_in(recorder).post(
        f"{OPS}/agenttopup/",
        {
            "action": "reverse",
            helpers.ACTION_CHECKBOX_NAME: [topup.pk],
            "apply": "yes",
            "reason": "wrong number",
        },
    )

    # then
    assert AgentTopUp.objects.get().status == AgentTopUpStatus.REVERSED
    assert balance(agent).available == 100_000
    ledger_ok()


def test_changing_an_agents_limits_is_audited(recorder: Any, agent: Agent) -> None:
    # given
    client = signed_in(recorder)
    page = client.get(f"{OPS}/agent/{agent.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data.update(
        {
            "daily_count_limit": "50",
            "allowed_plan_codes": '["hk-50"]',
            "plan_discounts-TOTAL_FORMS": "0",
            "plan_discounts-INITIAL_FORMS": "0",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
            "channels-TOTAL_FORMS": "0",
            "channels-INITIAL_FORMS": "0",
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
        }
    )

    # when
    response = client.post(f"{OPS}/agent/{agent.pk}/change/", data)

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    agent.refresh_from_db()
    assert agent.daily_count_limit == 50
    entry = AuditEntry.objects.filter(action="agent.change").get()
    assert "daily_count_limit" in entry.data["fields"]
